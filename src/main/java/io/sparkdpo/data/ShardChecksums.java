package io.sparkdpo.data;

import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.SerializableConfiguration;

/**
 * The size and sha256 a manifest records for each shard, checked against the file's bytes wherever a shard is
 * used: when a reader loads it and when prepare decides a folder is up to date. A flipped byte fails loudly, naming
 * the file and the manifest, instead of training on (or keeping) what was not written.
 */
public final class ShardChecksums {
  private ShardChecksums() {}

  /** sha256 of a file's bytes, streamed; lowercase hex. */
  public static String sha256(Storage storage, String path) throws IOException {
    MessageDigest md = PreferencePair.sha256();
    byte[] buf = new byte[1 << 16];
    try (InputStream in = storage.open(path)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  /** What differs between the file and the manifest's record of it, or null when it matches (or records no sha256). */
  public static String mismatch(Storage storage, String path, long bytes, String sha256) {
    long len;
    try {
      len = storage.status(path).getLen();
    } catch (IOException | UncheckedIOException e) {
      return "missing (" + e.getMessage() + ")";
    }
    if (len != bytes) {
      return len + " bytes, but the manifest records " + bytes;
    }
    if (sha256 == null) {
      return null; // written before checksums were recorded: the size is all there is to check
    }
    try {
      String actual = sha256(storage, path);
      return actual.equals(sha256) ? null : "sha256 " + actual + ", but the manifest records " + sha256;
    } catch (IOException | UncheckedIOException e) {
      return "unreadable (" + e.getMessage() + ")";
    }
  }

  /** Fails when the shard is not what {@code manifest} records. */
  public static void verify(Storage storage, String path, long bytes, String sha256, String manifest) {
    String problem = mismatch(storage, path, bytes, sha256);
    if (problem != null) {
      throw new IllegalStateException("shard " + path + " does not match " + manifest + ": " + problem
          + "; it was changed or damaged after it was written (prepare or reference it again)");
    }
  }

  private record Expected(String path, long bytes, String sha256) implements Serializable {}

  /**
   * Checks every shard of a folder against its manifest, one Spark task per shard (the reads run where the data is
   * read next, in parallel); fails naming each shard that does not match.
   */
  public static void verifyAll(SparkSession spark, String dir, List<PreparedManifest.Shard> shards) {
    if (shards.isEmpty()) {
      return;
    }
    List<Expected> expected = shards.stream()
        .map(sh -> new Expected(Storage.join(dir, sh.file()), sh.bytes(), sh.sha256())).toList();
    Broadcast<SerializableConfiguration> conf = HadoopConfBroadcast.of(spark.sparkContext());
    List<String> problems = JavaSparkContext.fromSparkContext(spark.sparkContext())
        .parallelize(expected, expected.size())
        .map(e -> {
          String problem = mismatch(new Storage(conf.value().value()), e.path(), e.bytes(), e.sha256());
          return problem == null ? "" : e.path() + ": " + problem;
        })
        .filter(p -> !p.isEmpty())
        .collect();
    if (!problems.isEmpty()) {
      throw new IllegalStateException(problems.size() + " shard(s) do not match " + Storage.join(dir,
          PreparedManifest.FILE) + ", changed or damaged after they were written (prepare them again): "
          + String.join("; ", problems));
    }
  }

  /**
   * The record of {@code shardPath} in the manifest of the folder holding it ({@code DIR/split/shard.parquet} is
   * listed in {@code DIR/manifest.json} as {@code split/shard.parquet}), or null when there is no such manifest or
   * entry.
   */
  static PreparedManifest.Shard recordOf(Storage storage, String shardPath) {
    String qualified = shardPath;
    int name = qualified.lastIndexOf('/');
    int split = name > 0 ? qualified.lastIndexOf('/', name - 1) : -1;
    if (split < 0) {
      return null;
    }
    String dir = qualified.substring(0, split);
    String file = qualified.substring(split + 1);
    String manifest = Storage.join(dir, PreparedManifest.FILE);
    if (!storage.exists(manifest)) {
      return null;
    }
    PreparedManifest m;
    try {
      m = Json.MAPPER.readValue(storage.readBytes(manifest), PreparedManifest.class);
    } catch (IOException e) {
      throw new UncheckedIOException(manifest + " cannot be parsed: " + e.getMessage(), e);
    }
    if (m.splits() == null) {
      return null;
    }
    return m.splits().values().stream().flatMap(s -> s.shards().stream()).filter(s -> s.file().equals(file))
        .findFirst().orElse(null);
  }
}
