package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.FolderLease;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.TrainingFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code train}, {@code sft} and {@code reward} hold their output folder's lease: a second live writer is refused up front. */
class TrainingStageLeaseTest {
  @TempDir
  Path tmp;

  private TrainingStage stage(Path run, SessionSpec.Stage which) {
    JobConfig cfg = TrainingFixtures.config("model.path=builtin:tiny", "train.reference_mode=in_loop",
        "train.output_dir=" + run, "sft.output_dir=" + run, "reward.output_dir=" + run);
    return new TrainingStage(SharedSpark.get(), cfg, which);
  }

  @Test
  void aSecondTrainOnALiveRunFolderIsRefusedNamingTheHolderAndTouchesNothing() {
    Path run = tmp.resolve("run");
    String dir = Storage.qualify(run.toString());
    try (FolderLease first = FolderLease.acquire(Storage.local(), dir, "dpo-first000", Duration.ofSeconds(60))) {
      for (SessionSpec.Stage which : SessionSpec.Stage.values()) {
        FolderLease.LeaseException e = assertThrows(FolderLease.LeaseException.class,
            () -> stage(run, which).run(TrainingStage.Inputs.prepared(tmp.resolve("no-data").toString())));
        assertTrue(e.getMessage().contains("is being written by run dpo-first000"), e.getMessage());
        assertTrue(e.getMessage().contains("one writer per output folder"), e.getMessage());
      }
      assertFalse(Files.exists(run.resolve(TrainingStage.RUN_FILE)), "the refused run wrote nothing");
      assertEquals("dpo-first000", first.holder().runId());
    }
  }

  /** A driver gone without a trace (another host, no heartbeat for longer than the timeout): taken over. */
  @Test
  void aStaleLeaseIsTakenOverAndTheTakersLeaseIsReleasedWhenItStops() throws Exception {
    Path run = tmp.resolve("stale");
    Files.createDirectories(run);
    Instant old = Instant.now().minusSeconds(3600);
    Files.writeString(run.resolve(FolderLease.FILE), "{\"run_id\":\"dpo-gone0000\",\"attempt\":3,\"host\":\"lost\","
        + "\"pid\":7,\"acquired_at\":\"" + old + "\",\"heartbeat_at\":\"" + old + "\"}");
    // It gets past the lease and fails on the missing data, in the stage's own words.
    RuntimeException e = assertThrows(RuntimeException.class,
        () -> stage(run, SessionSpec.Stage.DPO).run(TrainingStage.Inputs.prepared(tmp.resolve("no-data").toString())));
    assertFalse(e instanceof FolderLease.LeaseException, e.toString());
    assertFalse(Files.exists(run.resolve(FolderLease.FILE)), "released on the way out");
  }
}
