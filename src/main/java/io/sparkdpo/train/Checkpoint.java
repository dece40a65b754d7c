package io.sparkdpo.train;

import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.fs.ChecksumException;

/**
 * A committed checkpoint folder ({@code checkpoint-N/}, or {@code checkpoints/step-N/} of the earlier layout). Every read is checked against the sha256 recorded
 * at write time; a mismatch is a {@link CheckpointException} naming the file.
 */
public final class Checkpoint {
  private final Storage storage;
  private final String dir;
  private final long step;
  private final Map<String, CheckpointStore.FileSum> files;

  Checkpoint(Storage storage, String dir, long step, Map<String, CheckpointStore.FileSum> files) {
    this.storage = storage;
    this.dir = dir;
    this.step = step;
    this.files = files;
  }

  public long step() {
    return step;
  }

  /** The folder, e.g. {@code s3a://bucket/run/checkpoint-500}. */
  public String dir() {
    return dir;
  }

  /** The payload's file names (relative, with {@code /} for sub-folders). */
  public Set<String> files() {
    return files.keySet();
  }

  /** Full path of one file, for readers that take a path. */
  public String path(String name) {
    return Storage.join(dir, name);
  }

  /** The whole file, verified. */
  public byte[] read(String name) {
    CheckpointStore.FileSum expected = expected(name);
    byte[] bytes;
    try {
      bytes = storage.readBytes(path(name));
    } catch (UncheckedIOException e) {
      throw unreadable(name, e.getCause());
    }
    check(name, expected, bytes.length, CheckpointStore.sha256(bytes));
    return bytes;
  }

  public <T> T readJson(String name, Class<T> type) {
    try {
      return Json.MAPPER.readValue(read(name), type);
    } catch (IOException e) {
      throw new CheckpointException(describe(name) + " is not valid JSON for " + type.getSimpleName() + ": "
          + e.getMessage(), e);
    }
  }

  /** Streams a file and verifies it on the way; {@code reader} sees the bytes before the check completes. */
  public <T> T read(String name, StreamReader<T> reader) {
    CheckpointStore.FileSum expected = expected(name);
    MessageDigest digest = CheckpointStore.newDigest();
    T value;
    long[] count = new long[1];
    try (InputStream raw = storage.open(path(name));
         InputStream in = new CountingDigestStream(raw, digest, count)) {
      value = reader.read(in);
      in.transferTo(java.io.OutputStream.nullOutputStream());
    } catch (IOException e) {
      throw unreadable(name, e);
    }
    check(name, expected, count[0], CheckpointStore.hex(digest.digest()));
    return value;
  }

  /** Reads every file once and checks its size and sha256. */
  public void verify() {
    for (String name : files.keySet()) {
      read(name, in -> null);
    }
  }

  /** Reads a stream; may stop early (the rest is still hashed). */
  @FunctionalInterface
  public interface StreamReader<T> {
    T read(InputStream in) throws IOException;
  }

  private CheckpointStore.FileSum expected(String name) {
    CheckpointStore.FileSum sum = files.get(name);
    if (sum == null) {
      throw new CheckpointException("checkpoint " + dir + " has no file '" + name + "'; it has " + files.keySet());
    }
    return sum;
  }

  private void check(String name, CheckpointStore.FileSum expected, long bytes, String sha256) {
    if (bytes != expected.bytes() || !sha256.equals(expected.sha256())) {
      throw new CheckpointException(describe(name) + " is corrupt: sha256 " + sha256 + " (" + bytes
          + " bytes), checksums.json records " + expected.sha256() + " (" + expected.bytes() + " bytes)");
    }
  }

  /** Storage-level checksums (HDFS, Hadoop's local .crc files) report corruption before our sha256 can. */
  private CheckpointException unreadable(String name, IOException e) {
    String how = e instanceof ChecksumException ? " is corrupt (storage checksum): " : " cannot be read: ";
    return new CheckpointException(describe(name) + how + e.getMessage(), e);
  }

  private String describe(String name) {
    return "checkpoint file " + path(name);
  }

  private static final class CountingDigestStream extends DigestInputStream {
    private final long[] count;

    CountingDigestStream(InputStream in, MessageDigest digest, long[] count) {
      super(in, digest);
      this.count = count;
    }

    @Override
    public int read() throws IOException {
      int b = super.read();
      if (b >= 0) {
        count[0]++;
      }
      return b;
    }

    @Override
    public int read(byte[] buf, int off, int len) throws IOException {
      int n = super.read(buf, off, len);
      if (n > 0) {
        count[0] += n;
      }
      return n;
    }
  }
}
