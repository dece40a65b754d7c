package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.hadoop.fs.FileStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checkpoints of a run as the Hugging Face Trainer names them, {@code RUN/checkpoint-N/}, payload-agnostic: the
 * trainer hands named byte writers (model files, optimizer state, loop state, trainer_state.json). Folders of the
 * earlier layout, {@code RUN/checkpoints/step-N/}, are still read, resumed from, pruned and cleared: a run started
 * by an older version goes on, and its next save is a {@code checkpoint-N/}.
 *
 * <p>Writing: every file goes into {@code RUN/.tmp-checkpoint-N-<uuid>/} with its sha256 computed on the way,
 * then {@code checksums.json}, then the folder is renamed to {@code checkpoint-N}, and only then the marker
 * {@code COMMITTED} (holding the sha256 of checksums.json) is written. A crash at any point before the marker
 * leaves the previous checkpoint the newest valid one. On object stores rename is a copy and not atomic, which
 * is why validity is decided by the marker alone, never by the folder's existence.
 *
 * <p>Reading: {@link #latestValid()} takes the newest folder with a marker whose files all match their
 * checksums, skipping (and logging) corrupt or uncommitted ones. {@link #resumePoint} does the same for a run
 * that resumes, but when committed checkpoints exist and none verifies it stops with an error naming them (a
 * silent restart at step 0 would throw the run's progress away and prune the evidence), unless a deliberate
 * restart is asked for. After each save, all but the newest {@code keepLast} committed checkpoints are deleted
 * (marker first), with any uncommitted leftovers.
 *
 * <p>Fencing: a store {@link #fencedBy fenced} for stage attempt {@code a} names its temporary folders
 * {@code .tmp-checkpoint-N-a<a>-<uuid>}, asks its {@link Fence} right before it replaces, renames into place or marks
 * a checkpoint committed (so a straggler of an earlier attempt cannot commit), and prunes only temporary folders
 * of its own or earlier attempts (and untagged ones older than itself), never those of a later attempt.
 */
public final class CheckpointStore {
  private static final Logger LOG = LoggerFactory.getLogger(CheckpointStore.class);
  static final String CHECKSUMS = "checksums.json";
  static final String MARKER = "COMMITTED";
  /** The Trainer's folder name ({@code PREFIX_CHECKPOINT_DIR} in transformers). */
  public static final String PREFIX = "checkpoint-";
  /** The earlier layout's parent folder, {@code RUN/checkpoints/step-N}. */
  static final String LEGACY_ROOT = "checkpoints";
  private static final Pattern STEP_DIR = Pattern.compile(PREFIX + "(\\d+)");
  private static final Pattern LEGACY_STEP_DIR = Pattern.compile("step-(\\d+)");
  private static final Pattern TMP_DIR = Pattern.compile("\\.tmp-(?:checkpoint|step)-\\d+-(?:a(\\d+)-)?.*");
  private static final Pattern RESERVED = Pattern.compile("(^|.*/)(" + CHECKSUMS + "|" + MARKER + ")$");

  /** Size and sha256 of one file, as recorded in checksums.json. */
  public record FileSum(@JsonProperty("bytes") long bytes, @JsonProperty("sha256") String sha256) {}

  /** The content of checksums.json. */
  public record Manifest(@JsonProperty("step") long step, @JsonProperty("files") TreeMap<String, FileSum> files) {}

  /** The content of the commit marker. */
  public record Marker(@JsonProperty("step") long step, @JsonProperty("checksums_sha256") String checksumsSha256,
                       @JsonProperty("committed_at") String committedAt) {}

  /** Says whether this writer may still change the run's checkpoints; throws when not. */
  @FunctionalInterface
  public interface Fence {
    Fence NONE = action -> { };

    void check(String action);
  }

  private final Storage storage;
  private final String runDir;
  private final Integer keepLast;
  private final int attempt;
  private final Fence fence;
  private final long createdMillis = System.currentTimeMillis();

  /**
   * @param runDir the run folder (local path, {@code file:}, {@code hdfs:}, {@code s3a:})
   * @param keepLast committed checkpoints to keep after each save; null keeps all
   */
  public CheckpointStore(Storage storage, String runDir, Integer keepLast) {
    this(storage, Storage.qualify(runDir), keepLast, 0, Fence.NONE);
  }

  private CheckpointStore(Storage storage, String runDir, Integer keepLast, int attempt, Fence fence) {
    if (keepLast != null && keepLast < 1) {
      throw new IllegalArgumentException("keep_last must be >= 1 or null, got " + keepLast);
    }
    this.storage = storage;
    this.runDir = runDir;
    this.keepLast = keepLast;
    this.attempt = attempt;
    this.fence = fence;
  }

  /** This store as the writer of stage attempt {@code attempt} (>= 1), asking {@code fence} before each commit. */
  public CheckpointStore fencedBy(int attempt, Fence fence) {
    if (attempt < 1) {
      throw new IllegalArgumentException("attempt must be >= 1, got " + attempt);
    }
    return new CheckpointStore(storage, runDir, keepLast, attempt, fence);
  }

  /** The run folder the checkpoints are in. */
  public String runDir() {
    return runDir;
  }

  /** The folder checkpoint {@code step} is written to: {@code RUN/checkpoint-N}. */
  public String dirOf(long step) {
    return Storage.join(runDir, PREFIX + step);
  }

  private String legacyDirOf(long step) {
    return Storage.join(Storage.join(runDir, LEGACY_ROOT), "step-" + step);
  }

  /** Writes and commits checkpoint {@code step}, then prunes (keeping every committed one the limit allows). */
  public Checkpoint save(long step, Map<String, PayloadWriter> files) {
    return save(step, files, null);
  }

  /**
   * Writes and commits checkpoint {@code step}, then prunes; {@code best} (a committed step, or null) survives the
   * pruning besides the newest. Replaces an existing checkpoint of that step, in either layout (it is invalidated
   * first, so a crash in between leaves no half-valid folder).
   */
  public Checkpoint save(long step, Map<String, PayloadWriter> files, Long best) {
    if (step < 0) {
      throw new IllegalArgumentException("step must be >= 0, got " + step);
    }
    for (String name : files.keySet()) {
      if (name.isBlank() || name.startsWith("/") || name.contains("..") || RESERVED.matcher(name).matches()) {
        throw new IllegalArgumentException("invalid checkpoint file name '" + name + "'");
      }
    }
    String tmp = Storage.join(runDir, ".tmp-" + PREFIX + step + "-a" + attempt + "-" + UUID.randomUUID());
    TreeMap<String, FileSum> sums = new TreeMap<>();
    try {
      storage.mkdirs(tmp);
      for (Map.Entry<String, PayloadWriter> e : files.entrySet()) {
        sums.put(e.getKey(), writeHashed(Storage.join(tmp, e.getKey()), e.getValue()));
      }
      byte[] checksums = Json.MAPPER.writeValueAsBytes(new Manifest(step, sums));
      storage.writeBytes(Storage.join(tmp, CHECKSUMS), checksums);
      String dir = dirOf(step);
      fence.check("commit checkpoint step " + step);
      for (String old : List.of(dir, legacyDirOf(step))) {
        if (storage.exists(old)) {
          storage.delete(Storage.join(old, MARKER));
          storage.delete(old);
        }
      }
      storage.rename(tmp, dir);
      Marker marker = new Marker(step, sha256(checksums), Instant.now().toString());
      fence.check("mark checkpoint step " + step + " committed");
      storage.writeBytes(Storage.join(dir, MARKER), Json.MAPPER.writeValueAsBytes(marker));
      LOG.info("checkpoint step {} committed at {} ({} files)", step, dir, sums.size());
      Checkpoint saved = new Checkpoint(storage, dir, step, sums);
      prune(step, best);
      return saved;
    } catch (IOException e) {
      deleteQuietly(tmp);
      throw new UncheckedIOException("cannot write checkpoint step " + step + " under " + runDir + ": "
          + e.getMessage(), e);
    } catch (RuntimeException e) {
      deleteQuietly(tmp);
      throw e;
    }
  }

  /** Steps of folders that carry a commit marker, ascending (not verified). */
  public List<Long> committedSteps() {
    List<Long> steps = new ArrayList<>();
    for (Map.Entry<Long, String> e : stepDirs().entrySet()) {
      if (storage.exists(Storage.join(e.getValue(), MARKER))) {
        steps.add(e.getKey());
      }
    }
    return steps;
  }

  /** The newest committed checkpoint whose every file matches its checksum; empty if there is none. */
  public Optional<Checkpoint> latestValid() {
    List<Map.Entry<Long, String>> newestFirst = new ArrayList<>(stepDirs().entrySet());
    newestFirst.sort(Map.Entry.<Long, String>comparingByKey(Comparator.reverseOrder()));
    for (Map.Entry<Long, String> e : newestFirst) {
      try {
        Checkpoint c = open(e.getKey());
        c.verify();
        return Optional.of(c);
      } catch (CheckpointException ex) {
        LOG.warn("skipping checkpoint {}: {}", e.getValue(), ex.getMessage());
      }
    }
    return Optional.empty();
  }

  /**
   * The checkpoint a resuming run starts from: the newest committed one that verifies, or empty when there is
   * none to resume (no committed checkpoint: a fresh run, or one that died before its first commit).
   *
   * @param restart when committed checkpoints exist but none verifies: false stops with a
   *     {@link NoValidCheckpointException} naming each and why; true deletes them (a deliberate restart from
   *     step 0, logged) and returns empty
   */
  public Optional<Checkpoint> resumePoint(boolean restart) {
    List<Map.Entry<Long, String>> newestFirst = new ArrayList<>(stepDirs().entrySet());
    newestFirst.sort(Map.Entry.<Long, String>comparingByKey(Comparator.reverseOrder()));
    Map<String, String> corrupt = new LinkedHashMap<>();
    for (Map.Entry<Long, String> e : newestFirst) {
      if (!storage.exists(Storage.join(e.getValue(), MARKER))) {
        LOG.warn("skipping checkpoint {}: not committed (its writer did not finish)", e.getValue());
        continue;
      }
      try {
        Checkpoint c = open(e.getKey());
        c.verify();
        return Optional.of(c);
      } catch (CheckpointException ex) {
        LOG.warn("skipping checkpoint {}: {}", e.getValue(), ex.getMessage());
        corrupt.put(e.getValue(), ex.getMessage());
      }
    }
    if (corrupt.isEmpty()) {
      return Optional.empty();
    }
    if (!restart) {
      throw new NoValidCheckpointException(runDir, corrupt);
    }
    for (String dir : corrupt.keySet()) {
      fence.check("discard corrupt checkpoint " + dir);
      LOG.warn("deliberate restart (restart_on_corrupt_checkpoints): discarding corrupt checkpoint {}", dir);
      storage.delete(Storage.join(dir, MARKER));
      storage.delete(dir);
    }
    LOG.warn("deliberate restart: {} corrupt checkpoint(s) discarded, training starts again at step 0", corrupt.size());
    return Optional.empty();
  }

  /** Committed checkpoints exist under a run folder, and not one of them verifies. */
  public static final class NoValidCheckpointException extends CheckpointException {
    private final Map<String, String> corrupt;

    NoValidCheckpointException(String runDir, Map<String, String> corrupt) {
      super(runDir + " holds " + corrupt.size() + " committed checkpoint(s) and none verifies: "
          + String.join("; ", corrupt.entrySet().stream().map(e -> e.getKey() + ": " + e.getValue()).toList())
          + ". Training stops instead of starting again at step 0 (that would discard the run's progress): "
          + "restore them, or set restart_on_corrupt_checkpoints=true in the stage's section (train or sft) to "
          + "discard them and train from scratch.");
      this.corrupt = Map.copyOf(corrupt);
    }

    /** Each corrupt checkpoint folder and what is wrong with it. */
    public Map<String, String> corrupt() {
      return corrupt;
    }
  }

  /**
   * Opens committed checkpoint {@code step}: the marker must exist and match checksums.json. File contents are
   * verified as they are read (or all at once with {@link Checkpoint#verify()}).
   */
  public Checkpoint open(long step) {
    String dir = stepDirs().getOrDefault(step, dirOf(step));
    String markerPath = Storage.join(dir, MARKER);
    if (!storage.exists(markerPath)) {
      throw new CheckpointException("checkpoint " + dir + " is not committed (no " + MARKER
          + " marker): its writer did not finish");
    }
    try {
      Marker marker = Json.MAPPER.readValue(storage.readBytes(markerPath), Marker.class);
      byte[] checksums = storage.readBytes(Storage.join(dir, CHECKSUMS));
      String actual = sha256(checksums);
      if (!actual.equals(marker.checksumsSha256())) {
        throw new CheckpointException("checkpoint file " + Storage.join(dir, CHECKSUMS) + " is corrupt: sha256 "
            + actual + ", the commit marker records " + marker.checksumsSha256());
      }
      Manifest manifest = Json.MAPPER.readValue(checksums, Manifest.class);
      if (manifest.step() != step || marker.step() != step) {
        throw new CheckpointException("checkpoint " + dir + " records step " + manifest.step() + ", expected "
            + step);
      }
      return new Checkpoint(storage, dir, step, manifest.files());
    } catch (IOException | UncheckedIOException e) {
      throw new CheckpointException("checkpoint " + dir + " cannot be opened: " + e.getMessage(), e);
    }
  }

  /**
   * Deletes committed checkpoints beyond the newest {@code keepLast} (the {@code best} one kept besides the newest, as
   * the Trainer's rotation does) and every uncommitted leftover.
   */
  void prune(long justWritten, Long best) {
    List<Long> committed = committedSteps();
    for (Map.Entry<Long, String> e : stepDirs().entrySet()) {
      boolean isCommitted = committed.contains(e.getKey());
      if (!isCommitted && e.getKey() != justWritten) {
        LOG.info("removing uncommitted checkpoint folder {}", e.getValue());
        storage.delete(e.getValue());
      }
    }
    if (keepLast != null) {
      List<Long> newestFirst = new ArrayList<>(committed);
      newestFirst.sort(Comparator.reverseOrder());
      List<Long> keep = new ArrayList<>();
      keep.add(justWritten);
      if (best != null && committed.contains(best) && best != justWritten) {
        keep.add(best);
      }
      for (Long s : newestFirst) {
        if (keep.size() >= keepLast) {
          break;
        }
        if (!keep.contains(s)) {
          keep.add(s);
        }
      }
      for (Long s : committed) {
        if (!keep.contains(s)) {
          deleteCheckpoint(s, "keep_last " + keepLast);
        }
      }
    }
    deleteTemporaryFolders(runDir);
    deleteTemporaryFolders(Storage.join(runDir, LEGACY_ROOT));
  }

  /**
   * Deletes every checkpoint of the run, in both layouts, with any leftovers (a run folder cleared for another run).
   */
  public void clear() {
    for (Long step : stepDirs().keySet()) {
      fence.check("delete checkpoint step " + step);
      deleteCheckpoint(step, "the run folder is cleared");
    }
    deleteTemporaryFolders(runDir);
    storage.delete(Storage.join(runDir, LEGACY_ROOT));
  }

  private void deleteCheckpoint(long step, String why) {
    for (String dir : List.of(dirOf(step), legacyDirOf(step))) {
      if (storage.exists(dir)) {
        LOG.info("removing checkpoint {} ({})", dir, why);
        storage.delete(Storage.join(dir, MARKER));
        storage.delete(dir);
      }
    }
  }

  private void deleteTemporaryFolders(String parent) {
    for (FileStatus s : storage.list(parent)) {
      Matcher m = TMP_DIR.matcher(s.getPath().getName());
      if (!m.matches()) {
        continue;
      }
      // Never a later attempt's: this writer may be the straggler. Untagged (older versions): only if older than us.
      // An unfenced store (attempt 0) is the folder's only writer: every leftover is its own.
      boolean ours = attempt == 0 || (m.group(1) != null ? Integer.parseInt(m.group(1)) <= attempt
          : s.getModificationTime() < createdMillis);
      if (ours) {
        storage.delete(s.getPath().toString());
      }
    }
  }

  /** Every checkpoint folder by step; where both layouts hold a step, the Trainer's {@code checkpoint-N} wins. */
  private TreeMap<Long, String> stepDirs() {
    TreeMap<Long, String> dirs = new TreeMap<>();
    for (FileStatus s : storage.list(Storage.join(runDir, LEGACY_ROOT))) {
      Matcher m = LEGACY_STEP_DIR.matcher(s.getPath().getName());
      if (s.isDirectory() && m.matches()) {
        dirs.put(Long.parseLong(m.group(1)), legacyDirOf(Long.parseLong(m.group(1))));
      }
    }
    for (FileStatus s : storage.list(runDir)) {
      Matcher m = STEP_DIR.matcher(s.getPath().getName());
      if (s.isDirectory() && m.matches()) {
        dirs.put(Long.parseLong(m.group(1)), dirOf(Long.parseLong(m.group(1))));
      }
    }
    return dirs;
  }

  private FileSum writeHashed(String path, PayloadWriter writer) throws IOException {
    MessageDigest digest = newDigest();
    long[] count = new long[1];
    try (OutputStream raw = storage.create(path);
         OutputStream out = new DigestOutputStream(raw, digest) {
           @Override
           public void write(int b) throws IOException {
             super.write(b);
             count[0]++;
           }

           @Override
           public void write(byte[] b, int off, int len) throws IOException {
             super.write(b, off, len);
             count[0] += len;
           }
         }) {
      writer.writeTo(out);
    }
    return new FileSum(count[0], hex(digest.digest()));
  }

  private void deleteQuietly(String path) {
    try {
      storage.delete(path);
    } catch (RuntimeException e) {
      LOG.warn("could not remove {}: {}", path, e.getMessage());
    }
  }

  static MessageDigest newDigest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static String sha256(byte[] bytes) {
    return hex(newDigest().digest(bytes));
  }

  static String hex(byte[] digest) {
    return HexFormat.of().formatHex(digest);
  }
}
