package io.sparkdpo.data;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.struct;
import static org.apache.spark.sql.functions.to_json;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code prepare --input table:NAME}: a table of the session's catalog (here the built-in catalog of the shared test
 * session, an external Parquet table saved with saveAsTable into a temporary folder).
 */
class PrepareTableInputTest {
  private static final ObjectMapper M = new ObjectMapper();
  private static final String TABLE = "i15_table_pairs";
  private static final String QUALIFIED = "table:spark_catalog.default." + TABLE;

  @TempDir
  Path dir;
  Path tokenizer;
  SparkSession spark;

  @BeforeEach
  void setUp() {
    spark = SharedSpark.get();
    tokenizer = ByteTokenizer.write(dir.resolve("tokenizer"), null);
  }

  @AfterEach
  void dropTable() {
    spark.sql("DROP TABLE IF EXISTS " + TABLE);
  }

  private JobConfig config(String... overrides) {
    List<String> all = new ArrayList<>(List.of("prepare.tokenizer=" + tokenizer, "prepare.template=hh",
        "prepare.max_length=256", "prepare.max_prompt_length=64", "prepare.eval_fraction=0.0",
        "prepare.max_row_bytes=512", "prepare.max_quarantine_fraction=1.0"));
    all.addAll(List.of(overrides));
    return ConfigLoader.load(null, all);
  }

  private PrepareJob.Result prepare(JobConfig cfg, Path out, String... inputs) {
    return new PrepareJob(spark, cfg, 1).run(List.of(inputs), out.toString());
  }

  private static String hh(String prompt, String chosen, String rejected) {
    String p = "\\n\\nHuman: " + prompt + "\\n\\nAssistant:";
    return "{\"chosen\": \"" + p + " " + chosen + "\", \"rejected\": " + (rejected == null ? "null"
        : "\"" + p + " " + rejected + "\"") + "}";
  }

  private static List<String> rows() {
    return List.of(
        hh("Hi", "Hello!", "Go away."),
        hh("2+2?", "4", "5"),
        hh("Sky?", "Blue", "Loud"),
        hh("Hi", "Hello!", "Go away."),              // duplicate_pair: the same row again
        hh("Cat?", "Meow", null),                    // null_field
        hh("Same?", "Yes", "Yes"),                   // identical_responses
        hh("Long?", "z".repeat(600), "no"),          // row_too_large (max_row_bytes 512)
        hh("Dog?", "Woof", "Quack"),
        hh("Fish?", "Swim", "Fly"));
  }

  /** Saves {@code rows} as the table, in {@code partitions} files, in the given order. */
  private void saveTable(List<String> rows, int partitions) {
    spark.sql("DROP TABLE IF EXISTS " + TABLE);
    Dataset<Row> df = spark.read().json(spark.createDataset(rows, Encoders.STRING())).select("chosen", "rejected");
    df.repartition(partitions).write().option("path", dir.resolve("warehouse/" + TABLE + "-" + System.nanoTime())
        .toString()).saveAsTable(TABLE);
  }

  private List<JsonNode> quarantine(Path out) throws IOException {
    List<JsonNode> rows = new ArrayList<>();
    try (var files = Files.list(out.resolve("quarantine"))) {
      for (Path f : files.filter(f -> f.toString().endsWith(".jsonl")).sorted().toList()) {
        for (String line : Files.readAllLines(f)) {
          rows.add(M.readTree(line));
        }
      }
    }
    return rows;
  }

  private static String sha256(String s) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void preparesATableWithExactCountsAndNamesRowsByTableAndContentOrder() throws Exception {
    saveTable(rows(), 3);
    Path out = dir.resolve("out");
    PrepareJob.Result r = prepare(config(), out, "table:" + TABLE);
    PreparedManifest m = r.manifest();
    assertEquals(9, m.counts().read());
    assertEquals(Map.of("duplicate_pair", 1L, "null_field", 1L, "identical_responses", 1L, "row_too_large", 1L),
        m.counts().reasons());
    assertEquals(5, m.counts().kept());
    assertEquals(1, m.input().files().size());
    InputFile table = m.input().files().get(0);
    assertEquals(QUALIFIED, table.path());
    assertEquals(InputFile.TABLE, table.layout());
    assertEquals(9L, table.rows());
    assertEquals(Map.of(QUALIFIED, "hh-rlhf"), m.input().formats());

    // Row N is the N-th row by the SHA-256 of its JSON rendering (every column, nulls kept).
    List<String> hashes = new ArrayList<>();
    Dataset<Row> t = spark.table(TABLE);
    for (Row row : t.select(to_json(struct(col("chosen"), col("rejected")), Map.of("ignoreNullFields", "false")))
        .collectAsList()) {
      hashes.add(sha256(row.getString(0)));
    }
    Collections.sort(hashes);
    List<Long> numbers = new ArrayList<>();
    for (JsonNode q : quarantine(out)) {
      assertEquals(QUALIFIED, q.get("source_file").asText());
      long row = q.get("source_row").asLong();
      numbers.add(row);
      if (!q.get("reason").asText().equals("row_too_large")) {
        String h = sha256(q.get("raw").asText());
        assertTrue(row - 1 >= hashes.indexOf(h) && row - 1 <= hashes.lastIndexOf(h), q.toString());
      }
    }
    List<PreparedPair> kept = PreparedShardReader.read(Storage.local(), out.resolve("train/shard-00000.parquet")
        .toString());
    for (PreparedPair p : kept) {
      assertEquals(QUALIFIED, p.sourceFile());
      numbers.add(p.sourceRow());
    }
    assertEquals(new TreeSet<>(List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L)), new TreeSet<>(numbers));
    assertEquals(9, numbers.size());
  }

  @Test
  void theSameRowsInAnotherLayoutAreUpToDateAndAChangedRowIsNot() throws Exception {
    saveTable(rows(), 1);
    Path a = dir.resolve("a");
    PrepareJob.Result first = prepare(config(), a, "table:" + TABLE);
    assertFalse(first.upToDate());
    assertTrue(prepare(config(), a, "table:default." + TABLE).upToDate(), "the same table, spelled otherwise");

    List<String> reversed = new ArrayList<>(rows());
    Collections.reverse(reversed);
    saveTable(reversed, 4); // rewritten: other files, other order, same rows
    assertTrue(prepare(config(), a, "table:" + TABLE).upToDate());
    Path b = dir.resolve("b");
    prepare(config(), b, "table:" + TABLE);
    for (String f : List.of("train/shard-00000.parquet", "quarantine/part-00000.jsonl")) {
      assertArrayEquals(Files.readAllBytes(a.resolve(f)), Files.readAllBytes(b.resolve(f)), f);
    }

    List<String> changed = new ArrayList<>(rows());
    changed.set(2, hh("Sky?", "Blue, mostly", "Loud"));
    saveTable(changed, 1);
    PrepareJob.Result again = prepare(config(), a, "table:" + TABLE);
    assertFalse(again.upToDate());
    assertEquals(9, again.manifest().counts().read());
    assertFalse(again.manifest().input().fingerprint().equals(first.manifest().input().fingerprint()));
  }

  @Test
  void aMissingTableFailsOnTheDriverBeforeAnySparkJob() throws Exception {
    saveTable(rows(), 1);
    AtomicInteger jobs = new AtomicInteger();
    SparkListener listener = new SparkListener() {
      @Override
      public void onJobStart(SparkListenerJobStart jobStart) {
        jobs.incrementAndGet();
      }
    };
    spark.sparkContext().listenerBus().waitUntilEmpty();
    spark.sparkContext().addSparkListener(listener);
    try {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> prepare(config(), dir.resolve("out"), "table:" + TABLE, "table:no_such_table"));
      assertTrue(e.getMessage().startsWith("input table:no_such_table does not exist in the session's catalog "
          + "(current catalog spark_catalog, database default"), e.getMessage());
      spark.sparkContext().listenerBus().waitUntilEmpty();
      assertEquals(0, jobs.get(), "Spark jobs started before the error");
    } finally {
      spark.sparkContext().removeSparkListener(listener);
    }
    assertFalse(Files.exists(dir.resolve("out")));
  }

  @Test
  void tablesAndFilesMixInOneRun() throws IOException {
    saveTable(rows().subList(0, 3), 1);
    Path file = dir.resolve("in/more.jsonl");
    Files.createDirectories(file.getParent());
    Files.writeString(file, hh("Bird?", "Tweet", "Moo") + "\n" + hh("Hi", "Hello!", "Go away.") + "\n");
    PreparedManifest m = prepare(config(), dir.resolve("out"), file.toString(), "table:" + TABLE).manifest();
    assertEquals(5, m.counts().read());
    assertEquals(4, m.counts().kept());
    assertEquals(Map.of("duplicate_pair", 1L), m.counts().reasons());
    // The duplicate's first occurrence is the earlier source by name: the file (file:...) before the table.
    JsonNode dup = quarantine(dir.resolve("out")).get(0);
    assertEquals(QUALIFIED, dup.get("source_file").asText());
    assertTrue(dup.get("detail").asText().contains("file:" + file + " row 2"), dup.get("detail").asText());
  }
}
