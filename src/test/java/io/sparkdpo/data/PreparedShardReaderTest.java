package io.sparkdpo.data;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PreparedShardReaderTest {
  @TempDir
  Path dir;

  private static PreparedRow row(String id, int[] prompt) {
    return new PreparedRow(id, "file:/in.jsonl", 7, "P", " C", " R", prompt, new int[] {5, 0}, new int[] {6, 0},
        true, false, null, null);
  }

  @Test
  void readsWhatPrepareWritesAndWhatSparkWritesWithReferenceColumns() throws Exception {
    String file = dir.resolve("shard-00000.parquet").toString();
    try (PreparedShardWriter w = new PreparedShardWriter(file, new Configuration(), 64)) {
      w.write(row("a", new int[] {1, 2, 3}));
      w.write(row("b", new int[] {}));
    }
    List<PreparedPair> mine = PreparedShardReader.read(Storage.local(), file);
    assertEquals(2, mine.size());
    assertArrayEquals(new int[] {1, 2, 3}, mine.get(0).promptIds());
    assertEquals(0, mine.get(1).promptLen());
    assertEquals(7, mine.get(0).sourceRow());
    assertNull(mine.get(0).refChosenLogp());

    // A shard read with Spark, given the two reference columns and written back with Spark.
    List<PreparedPair> referenced = PreparedShardReader.read(Storage.local(), withReferenceColumns(file,
        "ref_chosen_logps", "ref_rejected_logps", "double", "trl"));
    assertEquals(2, referenced.size());
    assertArrayEquals(new int[] {1, 2, 3}, referenced.get(0).promptIds());
    assertArrayEquals(new int[] {5, 0}, referenced.get(0).chosenIds());
    assertEquals(-1.5, referenced.get(0).refChosenLogp());
    assertEquals(-3.0, referenced.get(0).refRejectedLogp());
    assertEquals(-0.0, referenced.get(1).refRejectedLogp());
  }

  @Test
  void readsTheLegacyReferenceColumnNamesAndTrlFloat32LogProbs() throws Exception {
    String file = dir.resolve("shard-00000.parquet").toString();
    try (PreparedShardWriter w = new PreparedShardWriter(file, new Configuration(), 64)) {
      w.write(row("a", new int[] {1, 2, 3}));
      w.write(row("b", new int[] {4}));
    }
    // Shards referenced before TRL's names: ref_chosen_logp / ref_rejected_logp.
    List<PreparedPair> legacy = PreparedShardReader.read(Storage.local(), withReferenceColumns(file,
        "ref_chosen_logp", "ref_rejected_logp", "double", "legacy"));
    assertEquals(-1.5, legacy.get(0).refChosenLogp());
    assertEquals(-3.0, legacy.get(0).refRejectedLogp());
    assertEquals(-1.0, legacy.get(1).refRejectedLogp());
    // TRL's precompute_ref_log_probs stores float32; -1.5 and -3 are exact in float32.
    List<PreparedPair> trl = PreparedShardReader.read(Storage.local(), withReferenceColumns(file,
        "ref_chosen_logps", "ref_rejected_logps", "float", "float32"));
    assertEquals(-1.5, trl.get(0).refChosenLogp());
    assertEquals(-3.0, trl.get(0).refRejectedLogp());
    assertEquals(-1.0, trl.get(1).refRejectedLogp());
  }

  @Test
  void theReferenceStagesWriterUsesTrlNamesAndTheReaderPrefersThemOverLegacyOnes() throws Exception {
    String file = dir.resolve("referenced.parquet").toString();
    PreparedPair p = new PreparedPair("a", "file:/in.jsonl", 1, "P", " C", " R", new int[] {1}, new int[] {5, 0},
        new int[] {6}, 1, 2, 1, false, -2.25, -4.5);
    try (PreparedShardWriter w = PreparedShardWriter.referenced(file, new Configuration())) {
      w.write(p, 2, 1);
    }
    Dataset<Row> written = SharedSpark.get().read().parquet(file);
    assertEquals(List.of("ref_chosen_logps", "ref_rejected_logps", "ref_chosen_tokens", "ref_rejected_tokens"),
        List.of(written.columns()).subList(13, 17));
    PreparedPair back = PreparedShardReader.read(Storage.local(), file).get(0);
    assertEquals(-2.25, back.refChosenLogp());
    assertEquals(-4.5, back.refRejectedLogp());

    // Both spellings in one file (old columns kept beside new ones): TRL's names win.
    String both = dir.resolve("both").toString();
    written.withColumn("ref_chosen_logp", lit(-99.0)).withColumn("ref_rejected_logp", lit(-99.0))
        .coalesce(1).write().parquet(both);
    PreparedPair fromBoth = PreparedShardReader.read(Storage.local(), partOf(Path.of(both))).get(0);
    assertEquals(-2.25, fromBoth.refChosenLogp());
    assertEquals(-4.5, fromBoth.refRejectedLogp());
  }

  @Test
  void aMarginColumnRoundTripsThroughPreparedAndReferencedShardsAndIsAbsentOtherwise() throws Exception {
    String file = dir.resolve("margin.parquet").toString();
    try (PreparedShardWriter w = new PreparedShardWriter(file, new Configuration(), 64, true)) {
      w.write(new PreparedRow("a", "file:/in.jsonl", 1, "P", " C", " R", new int[] {1}, new int[] {5}, new int[] {6},
          false, false, null, 1.25));
      w.write(new PreparedRow("b", "file:/in.jsonl", 2, "P", " C", " R", new int[] {2}, new int[] {5}, new int[] {6},
          false, false, null, null));
    }
    List<PreparedPair> back = PreparedShardReader.read(Storage.local(), file);
    assertEquals(1.25, back.get(0).margin());
    assertEquals(0.0, back.get(1).margin(), "a row without a margin in a folder with the column: 0, no margin");

    String referenced = dir.resolve("margin-referenced.parquet").toString();
    try (PreparedShardWriter w = PreparedShardWriter.referenced(referenced, new Configuration(), true)) {
      w.write(new PreparedPair("a", "file:/in.jsonl", 1, "P", " C", " R", new int[] {1}, new int[] {5},
          new int[] {6}, 1, 1, 1, false, -2.0, -3.0, -0.5), 1, 1);
    }
    PreparedPair r = PreparedShardReader.read(Storage.local(), referenced).get(0);
    assertEquals(-0.5, r.margin());
    assertEquals(-2.0, r.refChosenLogp());

    String plain = dir.resolve("plain.parquet").toString();
    try (PreparedShardWriter w = new PreparedShardWriter(plain, new Configuration(), 64)) {
      w.write(row("a", new int[] {1}));
    }
    assertNull(PreparedShardReader.read(Storage.local(), plain).get(0).margin());
    assertFalse(List.of(SharedSpark.get().read().parquet(plain).columns()).contains("margin"),
        "folders without margins keep the schema they had");
  }

  /** The shard rewritten by Spark with chosen = -1.5 and rejected = -prompt_len, of the given SQL type. */
  private String withReferenceColumns(String file, String chosen, String rejected, String type, String name)
      throws Exception {
    SparkSession spark = SharedSpark.get();
    Dataset<Row> df = spark.read().parquet(file)
        .withColumn(chosen, lit(-1.5).cast(type))
        .withColumn(rejected, col("prompt_len").cast(type).multiply(-1.0).cast(type));
    Path out = dir.resolve(name);
    df.coalesce(1).write().parquet(out.toString());
    return partOf(out);
  }

  private static String partOf(Path folder) throws Exception {
    try (var files = Files.list(folder)) {
      return files.filter(f -> f.getFileName().toString().endsWith(".parquet")).findFirst().orElseThrow().toString();
    }
  }
}
