package io.sparkdpo.data;

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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PrepareJobTest {
  private static final ObjectMapper M = new ObjectMapper();

  @TempDir
  Path dir;
  Path tokenizer;
  SparkSession spark;

  @BeforeEach
  void setUp() {
    spark = SharedSpark.get();
    tokenizer = ByteTokenizer.write(dir.resolve("tokenizer"), null);
  }

  private JobConfig config(String... overrides) {
    List<String> all = new ArrayList<>(List.of("prepare.tokenizer=" + tokenizer, "prepare.template=hh",
        "prepare.max_length=256", "prepare.max_prompt_length=64", "prepare.eval_fraction=0.0"));
    all.addAll(List.of(overrides));
    return ConfigLoader.load(null, all);
  }

  private PrepareJob.Result prepare(JobConfig cfg, Path out, Path... inputs) {
    List<String> in = new ArrayList<>();
    for (Path p : inputs) {
      in.add(p.toString());
    }
    return new PrepareJob(spark, cfg, PrepareJob.DEFAULT_TRAINING_WORKERS).run(in, out.toString());
  }

  static String hh(String prompt, String chosen, String rejected) {
    String p = "\\n\\nHuman: " + prompt + "\\n\\nAssistant:";
    return "{\"chosen\": \"" + p + " " + chosen + "\", \"rejected\": \"" + p + " " + rejected + "\"}";
  }

  private static Path write(Path file, List<String> lines) throws IOException {
    Files.createDirectories(file.getParent());
    Files.writeString(file, String.join("\n", lines) + "\n");
    return file;
  }

  private static List<JsonNode> quarantine(Path out) throws IOException {
    List<JsonNode> rows = new ArrayList<>();
    Path q = out.resolve("quarantine");
    if (Files.isDirectory(q)) {
      try (var files = Files.list(q)) {
        for (Path f : files.filter(f -> !f.getFileName().toString().startsWith(".")).sorted().toList()) {
          for (String line : Files.readAllLines(f)) {
            rows.add(M.readTree(line));
          }
        }
      }
    }
    return rows;
  }

  private static List<PreparedPair> shard(Path out, String name) {
    return PreparedShardReader.read(Storage.local(), out.resolve(name).toString());
  }

  @Test
  void readsEachLayoutAndFormatIntoShardsWithExactCounts() throws IOException {
    Path hhFile = write(dir.resolve("in/hh.jsonl"), List.of(
        hh("Hi", "Hello!", "Go away."),
        hh("2+2?", "4", "5")));
    Path trlArray = dir.resolve("in/trl.json");
    Files.writeString(trlArray, "[\n {\"prompt\": [{\"role\": \"user\", \"content\": \"Sky?\"}],"
        + " \"chosen\": [{\"role\": \"assistant\", \"content\": \"Blue\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"Red\"}]},\n"
        + " {\"chosen\": \"The cat sat.\", \"rejected\": \"The cat ran.\"}\n]\n");
    Path parquet = dir.resolve("in/uf");
    List<String> uf = List.of(
        "{\"prompt\": \"Name a fruit\", \"chosen\": [{\"role\": \"user\", \"content\": \"Name a fruit\"}, {\"role\": \"assistant\", \"content\": \"Apple\"}],"
            + " \"rejected\": [{\"role\": \"user\", \"content\": \"Name a fruit\"}, {\"role\": \"assistant\", \"content\": \"Chair\"}], \"score_chosen\": 9.0, \"score_rejected\": 1.0}",
        "{\"prompt\": \"Name a fruit\", \"chosen\": [{\"role\": \"user\", \"content\": \"Name a fruit\"}, {\"role\": \"assistant\", \"content\": null}],"
            + " \"rejected\": [{\"role\": \"user\", \"content\": \"Name a fruit\"}, {\"role\": \"assistant\", \"content\": \"Chair\"}], \"score_chosen\": 9.0, \"score_rejected\": 1.0}");
    spark.read().json(spark.createDataset(uf, Encoders.STRING())).coalesce(1).write().parquet(parquet.toString());

    Path out = dir.resolve("out");
    PrepareJob.Result r = prepare(config(), out, dir.resolve("in"));
    PreparedManifest m = r.manifest();
    assertFalse(r.upToDate());
    assertEquals(6, m.counts().read());
    assertEquals(5, m.counts().kept());
    assertEquals(1, m.counts().quarantined());
    assertEquals(Map.of("null_field", 1L), m.counts().reasons());
    Map<String, String> formats = new TreeMap<>();
    m.input().formats().forEach((f, fmt) -> formats.put(f.substring(f.lastIndexOf('/') + 1).replaceAll("part-.*", "part"), fmt));
    assertEquals(Map.of("hh.jsonl", "hh-rlhf", "trl.json", "trl", "part", "ultrafeedback"), formats);
    assertEquals(3, m.input().files().size());
    assertEquals(List.of("json_array", "jsonl", "parquet"), m.input().files().stream().map(InputFile::layout).sorted().toList());

    List<PreparedPair> train = shard(out, "train/shard-00000.parquet");
    assertEquals(5, train.size());
    assertEquals(0, shard(out, "eval/shard-00000.parquet").size());
    PreparedPair two = train.stream().filter(p -> p.chosenText().equals(" 4")).findFirst().orElseThrow();
    assertEquals("\n\nHuman: 2+2?\n\nAssistant:", two.promptText());
    assertEquals(2, two.sourceRow());
    assertTrue(two.sourceFile().endsWith("/in/hh.jsonl"), two.sourceFile());
    assertArrayEquals(new int[] {' ' + 2, '4' + 2, ByteTokenizer.EOS}, two.chosenIds());
    assertEquals(two.promptText().length(), two.promptLen());
    PreparedPair cat = train.stream().filter(p -> p.chosenText().equals(" sat.")).findFirst().orElseThrow();
    assertEquals("\n\nHuman: The cat\n\nAssistant:", cat.promptText());
    assertEquals(2, cat.sourceRow());
    List<JsonNode> q = quarantine(out);
    assertEquals(1, q.size());
    assertEquals("chosen[1].content", q.get(0).get("field").asText());
    assertEquals(2, q.get(0).get("source_row").asLong());
    assertTrue(q.get(0).get("source_file").asText().contains("/in/uf/part-"));
    assertTrue(q.get(0).get("raw").asText().contains("\"content\":null"), q.get(0).get("raw").asText());
  }
}
