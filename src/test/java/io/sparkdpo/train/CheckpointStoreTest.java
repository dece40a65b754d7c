package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointStoreTest {
  @TempDir
  Path run;

  private final Storage storage = Storage.local();

  private static Map<String, PayloadWriter> payload(long step) {
    Map<String, PayloadWriter> files = new LinkedHashMap<>();
    files.put("model/model.safetensors", PayloadWriter.bytes(("weights of step " + step).getBytes(StandardCharsets.UTF_8)));
    files.put("model/config.json", PayloadWriter.json(Map.of("hidden_size", 64)));
    files.put("optimizer.safetensors", PayloadWriter.bytes(new byte[] {1, 2, 3, (byte) step}));
    files.put("trainer_state.json", PayloadWriter.json(Map.of("step", step)));
    return files;
  }

  private Path dirOf(long step) {
    return run.resolve("checkpoint-" + step);
  }

  @Test
  void savesChecksumsAndCommitsWithAMarkerWrittenLast() throws IOException {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), null);
    Checkpoint c = store.save(10, payload(10));
    assertEquals(10, c.step());
    assertTrue(Files.exists(dirOf(10).resolve("COMMITTED")));
    assertTrue(Files.exists(dirOf(10).resolve("checksums.json")));
    String sums = Files.readString(dirOf(10).resolve("checksums.json"));
    assertTrue(sums.contains("\"model/model.safetensors\""), sums);
    assertTrue(sums.contains("\"sha256\" : \"" + CheckpointStore.sha256("weights of step 10".getBytes(StandardCharsets.UTF_8))),
        sums);
    Checkpoint latest = store.latestValid().orElseThrow();
    assertEquals(10, latest.step());
    assertEquals("weights of step 10", new String(latest.read("model/model.safetensors"), StandardCharsets.UTF_8));
    assertEquals(10, ((Number) latest.readJson("trainer_state.json", Map.class).get("step")).intValue());
    assertEquals(java.util.Set.of("model/model.safetensors", "model/config.json", "optimizer.safetensors",
        "trainer_state.json"), latest.files());
    assertTrue(latest.path("model").endsWith("/checkpoint-10/model"), latest.path("model"));
    try (Stream<Path> left = Files.list(run)) {
      assertEquals(List.of("checkpoint-10"), left.map(p -> p.getFileName().toString()).toList(),
          "no temporary folder left");
    }
  }

  @Test
  void aCrashBeforeTheMarkerLeavesThePreviousCheckpointLatest() {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), null);
    store.save(5, payload(5));
    Map<String, PayloadWriter> failing = new LinkedHashMap<>(payload(6));
    failing.put("rng.json", out -> {
      out.write('{');
      throw new IOException("disk full");
    });
    java.io.UncheckedIOException e = assertThrows(java.io.UncheckedIOException.class, () -> store.save(6, failing));
    assertTrue(e.getMessage().contains("cannot write checkpoint step 6"), e.getMessage());
    assertEquals(5, store.latestValid().orElseThrow().step());
    assertFalse(Files.exists(dirOf(6)));
    // A writer killed after the rename but before the marker: a folder without COMMITTED.
    store.save(7, payload(7));
    assertTrue(dirOf(7).resolve("COMMITTED").toFile().delete());
    assertEquals(5, store.latestValid().orElseThrow().step());
    assertEquals(List.of(5L), store.committedSteps());
    CheckpointException notCommitted = assertThrows(CheckpointException.class, () -> store.open(7));
    assertTrue(notCommitted.getMessage().contains("is not committed"), notCommitted.getMessage());
  }

  @Test
  void aCorruptFileIsNamedOnReadAndSkippedByLatestValid() throws IOException {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), null);
    store.save(1, payload(1));
    store.save(2, payload(2));
    Path weights = dirOf(2).resolve("model/model.safetensors");
    Files.writeString(weights, "weights of step 9");
    // Storage writes no .crc side files (raw local file system): our own sha256 must catch it.
    assertFalse(Files.exists(dirOf(2).resolve("model/.model.safetensors.crc")));
    CheckpointException e = assertThrows(CheckpointException.class,
        () -> store.open(2).read("model/model.safetensors"));
    assertTrue(e.getMessage().contains("checkpoint-2/model/model.safetensors is corrupt: sha256 "),
        e.getMessage());
    assertTrue(e.getMessage().contains("checksums.json records"), e.getMessage());
    assertEquals(1, store.latestValid().orElseThrow().step());
    // A corrupted checksums.json is caught through the marker.
    Files.writeString(dirOf(1).resolve("checksums.json"), "{\"step\":1,\"files\":{}}");
    CheckpointException sums = assertThrows(CheckpointException.class, () -> store.open(1));
    assertTrue(sums.getMessage().contains("checkpoint-1/checksums.json is corrupt"), sums.getMessage());
    assertTrue(store.latestValid().isEmpty());
  }

  @Test
  void aMissingOrTruncatedFileIsAnError() throws IOException {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), null);
    store.save(3, payload(3));
    Files.write(dirOf(3).resolve("optimizer.safetensors"), new byte[] {1, 2});
    CheckpointException truncated = assertThrows(CheckpointException.class, () -> store.open(3).verify());
    assertTrue(truncated.getMessage().contains("optimizer.safetensors is corrupt"), truncated.getMessage());
    assertTrue(truncated.getMessage().contains("(2 bytes)"), truncated.getMessage());
    Files.delete(dirOf(3).resolve("trainer_state.json"));
    CheckpointException missing = assertThrows(CheckpointException.class,
        () -> store.open(3).read("trainer_state.json"));
    assertTrue(missing.getMessage().contains("trainer_state.json cannot be read"), missing.getMessage());
    CheckpointException unknown = assertThrows(CheckpointException.class, () -> store.open(3).read("nope.bin"));
    assertTrue(unknown.getMessage().contains("has no file 'nope.bin'"), unknown.getMessage());
  }

  @Test
  void keepsOnlyTheNewestCheckpointsAndRemovesLeftovers() throws IOException {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), 2);
    store.save(100, payload(100));
    store.save(200, payload(200));
    Files.createDirectories(run.resolve(".tmp-checkpoint-250-dead"));
    Files.createDirectories(run.resolve("checkpoints/.tmp-step-240-dead")); // the earlier layout's
    Files.createDirectories(dirOf(250));
    store.save(300, payload(300));
    assertEquals(List.of(200L, 300L), store.committedSteps());
    assertFalse(Files.exists(dirOf(100)));
    assertFalse(Files.exists(dirOf(250)), "uncommitted leftovers are removed");
    assertFalse(Files.exists(run.resolve(".tmp-checkpoint-250-dead")));
    assertFalse(Files.exists(run.resolve("checkpoints/.tmp-step-240-dead")));
    assertThrows(IllegalArgumentException.class, () -> new CheckpointStore(storage, run.toString(), 0));
  }

  /** The drill: with the only checkpoint corrupt, training restarted at step 0 and pruned the evidence. */
  @Test
  void whenNoCommittedCheckpointVerifiesResumingStopsNamingThem() throws IOException {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), null);
    store.save(10, payload(10));
    store.save(20, payload(20));
    Files.writeString(dirOf(10).resolve("optimizer.safetensors"), "flipped");
    Files.writeString(dirOf(20).resolve("model/model.safetensors"), "weights of step 99");
    Files.createDirectories(dirOf(30)); // an uncommitted leftover does not count either way
    CheckpointStore.NoValidCheckpointException e = assertThrows(CheckpointStore.NoValidCheckpointException.class,
        () -> store.resumePoint(false));
    assertEquals(2, e.corrupt().size());
    assertTrue(e.getMessage().contains("checkpoint-20: checkpoint file"), e.getMessage());
    assertTrue(e.getMessage().contains("checkpoint-20/model/model.safetensors is corrupt"), e.getMessage());
    assertTrue(e.getMessage().contains("checkpoint-10/optimizer.safetensors is corrupt"), e.getMessage());
    assertTrue(e.getMessage().contains("restart_on_corrupt_checkpoints=true"), e.getMessage());
    assertTrue(Files.exists(dirOf(10).resolve("COMMITTED")) && Files.exists(dirOf(20).resolve("COMMITTED")),
        "the evidence stays");

    assertTrue(store.resumePoint(true).isEmpty(), "a deliberate restart starts from scratch");
    assertFalse(Files.exists(dirOf(10)));
    assertFalse(Files.exists(dirOf(20)));
    assertTrue(store.resumePoint(false).isEmpty(), "nothing committed left: a fresh start, no error");
  }

  @Test
  void resumingSkipsACorruptNewestCheckpointForAnOlderValidOne() throws IOException {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), null);
    assertTrue(store.resumePoint(false).isEmpty(), "no checkpoint: a fresh run");
    store.save(10, payload(10));
    store.save(20, payload(20));
    Files.writeString(dirOf(20).resolve("trainer_state.json"), "{}");
    assertEquals(10, store.resumePoint(false).orElseThrow().step());
    assertTrue(Files.exists(dirOf(20).resolve("COMMITTED")), "the corrupt one is left for a look");
  }

  /** A straggler of attempt 1 whose lease moved to attempt 2 commits nothing and leaves no temporary folder. */
  @Test
  void aStragglerOfAnEarlierAttemptCannotCommit() throws IOException {
    String runDir = run.toString();
    try (io.sparkdpo.io.FolderLease lease = io.sparkdpo.io.FolderLease.acquire(storage, runDir, "train-1234",
        java.time.Duration.ofSeconds(60))) {
      lease.beginAttempt(1);
      CheckpointStore straggler = new CheckpointStore(storage, runDir, 2).fencedBy(1,
          action -> io.sparkdpo.io.FolderLease.requireHolder(storage, runDir, "train-1234", 1, action));
      straggler.save(5, payload(5));
      lease.beginAttempt(2);
      io.sparkdpo.io.FolderLease.LeaseException e = assertThrows(io.sparkdpo.io.FolderLease.LeaseException.class,
          () -> straggler.save(10, payload(10)));
      assertTrue(e.getMessage().contains("attempt 1 of run train-1234 may not commit checkpoint step 10"),
          e.getMessage());
      assertEquals(List.of(5L), straggler.committedSteps());
      assertFalse(Files.exists(dirOf(10)));
      try (Stream<Path> left = Files.list(run)) {
        assertEquals(List.of("checkpoint-5"), left.map(p -> p.getFileName().toString())
            .filter(n -> !n.startsWith("_lease")).toList());
      }
      // Replacing a step is fenced too: the straggler cannot invalidate attempt 2's checkpoint 5.
      assertThrows(io.sparkdpo.io.FolderLease.LeaseException.class, () -> straggler.save(5, payload(5)));
      assertTrue(Files.exists(dirOf(5).resolve("COMMITTED")));
    }
  }

  @Test
  void pruningRemovesOwnAndEarlierAttemptsTemporaryFoldersOnly() throws IOException {
    Path root = run;
    Files.createDirectories(root.resolve(".tmp-checkpoint-7-a1-0b1c"));
    Files.createDirectories(root.resolve(".tmp-checkpoint-7-a2-3d4e"));
    Files.createDirectories(root.resolve(".tmp-checkpoint-9-a3-5f60"));
    Files.createDirectories(root.resolve(".tmp-checkpoint-3-7a8b9c0d")); // untagged, older than the store
    Files.setLastModifiedTime(root.resolve(".tmp-checkpoint-3-7a8b9c0d"),
        java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 60_000));
    CheckpointStore attempt2 = new CheckpointStore(storage, run.toString(), null).fencedBy(2, action -> { });
    attempt2.save(8, payload(8));
    try (Stream<Path> left = Files.list(root)) {
      assertEquals(List.of(".tmp-checkpoint-9-a3-5f60", "checkpoint-8"),
          left.map(p -> p.getFileName().toString()).sorted().toList(), "attempt 3's folder is not ours to delete");
    }
  }

  @Test
  void savingAStepAgainReplacesIt() {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), null);
    store.save(4, payload(4));
    Map<String, PayloadWriter> other = Map.of("trainer_state.json", PayloadWriter.json(Map.of("step", 4, "again", true)));
    store.save(4, other);
    Checkpoint c = store.latestValid().orElseThrow();
    assertEquals(java.util.Set.of("trainer_state.json"), c.files());
    assertFalse(Files.exists(dirOf(4).resolve("model")));
  }

  @Test
  void worksWithFileUrisAndLocalFolderPayloads() throws IOException {
    Path model = run.resolve("scratch-model");
    Files.createDirectories(model.resolve("sub"));
    Files.writeString(model.resolve("config.json"), "{\"a\":1}");
    Files.write(model.resolve("sub/weights.bin"), new byte[] {9, 8, 7});
    CheckpointStore store = new CheckpointStore(storage, run.resolve("runs/x").toUri().toString(), 1);
    Map<String, PayloadWriter> files = new LinkedHashMap<>(PayloadWriter.localFolder(model, "model"));
    files.put("step.json", PayloadWriter.json(Map.of("step", 1)));
    store.save(1, files);
    Checkpoint c = new CheckpointStore(storage, run.resolve("runs/x").toString(), 1).latestValid().orElseThrow();
    assertEquals(java.util.Set.of("model/config.json", "model/sub/weights.bin", "step.json"), c.files());
    assertArrayEquals(new byte[] {9, 8, 7}, c.read("model/sub/weights.bin"));
    assertEquals("{\"a\":1}", Files.readString(run.resolve("runs/x/checkpoint-1/model/config.json")));
  }

  @Test
  void rejectsNamesThatEscapeOrShadowTheBookkeeping() {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), null);
    for (String bad : List.of("../evil", "/abs", "COMMITTED", "sub/checksums.json", " ")) {
      assertThrows(IllegalArgumentException.class, () -> store.save(1, Map.of(bad, PayloadWriter.bytes(new byte[0]))),
          bad);
    }
  }

  /** A checkpoint written by an earlier version, moved where that version kept it: {@code checkpoints/step-N}. */
  private void moveToEarlierLayout(long step) throws IOException {
    Files.createDirectories(run.resolve("checkpoints"));
    Files.move(dirOf(step), run.resolve("checkpoints/step-" + step));
  }

  @Test
  void readsResumesAndPrunesCheckpointsOfTheEarlierLayout() throws IOException {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), 2);
    store.save(1, payload(1));
    store.save(2, payload(2));
    moveToEarlierLayout(1);
    moveToEarlierLayout(2);
    assertEquals(List.of(1L, 2L), store.committedSteps());
    Checkpoint resumed = store.resumePoint(false).orElseThrow();
    assertEquals(2, resumed.step());
    assertTrue(resumed.dir().endsWith("/checkpoints/step-2"), resumed.dir());
    assertEquals("weights of step 2", new String(resumed.read("model/model.safetensors"), StandardCharsets.UTF_8));

    store.save(3, payload(3)); // the next save is in the Trainer's layout; the limit counts both
    assertEquals(List.of(2L, 3L), store.committedSteps());
    assertFalse(Files.exists(run.resolve("checkpoints/step-1")));
    assertTrue(Files.exists(run.resolve("checkpoints/step-2/COMMITTED")));
    assertTrue(Files.exists(dirOf(3).resolve("COMMITTED")));
    assertEquals(3, store.latestValid().orElseThrow().step());

    store.clear();
    assertTrue(store.committedSteps().isEmpty());
    assertFalse(Files.exists(run.resolve("checkpoints")));
    assertFalse(Files.exists(dirOf(3)));
  }

  /** transformers' rotation: the best checkpoint stays besides the newest, even with a limit of 1. */
  @Test
  void pruningKeepsTheBestCheckpointBesidesTheNewest() {
    CheckpointStore store = new CheckpointStore(storage, run.toString(), 1);
    store.save(1, payload(1), 1L);
    store.save(2, payload(2), 1L);
    assertEquals(List.of(1L, 2L), store.committedSteps());
    store.save(3, payload(3), 1L);
    assertEquals(List.of(1L, 3L), store.committedSteps());
    store.save(4, payload(4), 4L);
    assertEquals(List.of(4L), store.committedSteps());

    CheckpointStore two = new CheckpointStore(storage, run.resolve("two").toString(), 2);
    for (long s = 1; s <= 4; s++) {
      two.save(s, payload(s), 2L);
    }
    assertEquals(List.of(2L, 4L), two.committedSteps());
    two.save(5, payload(5), null);
    assertEquals(List.of(4L, 5L), two.committedSteps());
  }
}
