package io.sparkdpo.data;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

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
        true, false, null);
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

    // The reference stage reads a shard with Spark, adds its two columns and writes it back with Spark.
    SparkSession spark = SharedSpark.get();
    Dataset<Row> df = spark.read().parquet(file)
        .withColumn("ref_chosen_logp", lit(-1.5))
        .withColumn("ref_rejected_logp", col("prompt_len").cast("double").multiply(-1.0));
    Path out = dir.resolve("referenced");
    df.coalesce(1).write().parquet(out.toString());
    Path part;
    try (var files = Files.list(out)) {
      part = files.filter(f -> f.getFileName().toString().endsWith(".parquet")).findFirst().orElseThrow();
    }
    List<PreparedPair> referenced = PreparedShardReader.read(Storage.local(), part.toString());
    assertEquals(2, referenced.size());
    assertArrayEquals(new int[] {1, 2, 3}, referenced.get(0).promptIds());
    assertArrayEquals(new int[] {5, 0}, referenced.get(0).chosenIds());
    assertEquals(-1.5, referenced.get(0).refChosenLogp());
    assertEquals(-3.0, referenced.get(0).refRejectedLogp());
    assertEquals(-0.0, referenced.get(1).refRejectedLogp());
  }
}
