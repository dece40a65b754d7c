package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
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

/**
 * Hugging Face dataset folders as {@code datasets} saves them, read without renaming a file. The Arrow fixtures are
 * written by tools/golden/hf_dataset_folders.py from the Arrow specification (no pyarrow), with the rows they hold
 * in expected.json.
 */
class HuggingFaceDatasetFoldersTest {
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

  private static Path fixtures() {
    try {
      return Path.of(HuggingFaceDatasetFoldersTest.class.getResource("hf-datasets").toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  private JobConfig config(String... overrides) {
    List<String> all = new ArrayList<>(List.of("prepare.tokenizer=" + tokenizer, "prepare.template=chatml",
        "prepare.max_length=256", "prepare.max_prompt_length=64", "prepare.eval_fraction=0.0",
        "prepare.max_quarantine_fraction=1.0"));
    all.addAll(List.of(overrides));
    return ConfigLoader.load(null, all);
  }

  private PreparedManifest prepare(JobConfig cfg, Path input) {
    return new PrepareJob(spark, cfg, 1).run(List.of(input.toString()), dir.resolve("out").toString()).manifest();
  }

  private static Map<String, String> skipped(PreparedManifest m, Path root) {
    Map<String, String> out = new TreeMap<>();
    for (SkippedFile f : m.input().skipped()) {
      out.put(f.path().substring(f.path().indexOf(root.getFileName().toString())), f.reason());
    }
    return out;
  }

  private List<JsonNode> quarantine() throws IOException {
    List<JsonNode> rows = new ArrayList<>();
    Path q = dir.resolve("out/quarantine");
    if (Files.isDirectory(q)) {
      try (var files = Files.list(q)) {
        for (Path f : files.filter(f -> f.toString().endsWith(".jsonl")).sorted().toList()) {
          for (String line : Files.readAllLines(f)) {
            rows.add(M.readTree(line));
          }
        }
      }
    }
    return rows;
  }

  @Test
  void arrowStreamRowsAreTheRowsThePythonWriterPutThere() throws IOException {
    JsonNode expected = M.readTree(fixtures().resolve("expected.json").toFile());
    int files = 0;
    for (var folder : (Iterable<Map.Entry<String, JsonNode>>) expected::fields) {
      for (var file : (Iterable<Map.Entry<String, JsonNode>>) folder.getValue()::fields) {
        Path path = fixtures().resolve(folder.getKey()).resolve(file.getKey());
        List<JsonNode> rows = new ArrayList<>();
        long row = 0;
        try (InputStream in = Files.newInputStream(path);
            ArrowStreamRows it = new ArrowStreamRows(path.toString(), in, 1 << 20)) {
          while (it.hasNext()) {
            RawRecord r = it.next();
            assertEquals(++row, r.sourceRow());
            assertTrue(r.isWhole());
            rows.add(M.readTree(r.bytes()));
          }
        }
        List<JsonNode> want = new ArrayList<>();
        file.getValue().forEach(want::add);
        assertEquals(want, rows, path.toString());
        files++;
      }
    }
    assertEquals(4, files);
  }

  @Test
  void aRowLargerThanMaxRowBytesIsMeasuredNotKept() throws IOException {
    Path path = fixtures().resolve("saved-dataset/data-00001-of-00002.arrow");
    try (InputStream in = Files.newInputStream(path); ArrowStreamRows it = new ArrowStreamRows(path.toString(), in, 64)) {
      RawRecord first = it.next();
      assertTrue(!first.isWhole());
      assertEquals(64, first.bytes().length);
      assertTrue(first.size() > 64, "size " + first.size());
      assertEquals(1, first.sourceRow());
    }
  }

  @Test
  void savedDatasetIsReadAsStateJsonListsItsArrowFiles() throws IOException {
    Path input = fixtures().resolve("saved-dataset");
    PreparedManifest m = prepare(config(), input);
    assertEquals(5, m.counts().read());
    assertEquals(4, m.counts().kept());
    assertEquals(Map.of("null_field", 1L), m.counts().reasons());
    assertEquals(List.of(InputFile.ARROW_STREAM, InputFile.ARROW_STREAM),
        m.input().files().stream().map(InputFile::layout).toList());
    assertTrue(m.input().files().get(0).path().endsWith("saved-dataset/data-00000-of-00002.arrow"));
    assertEquals(List.of("trl", "trl"), List.copyOf(m.input().formats().values()));
    assertEquals(Map.of("saved-dataset/dataset_info.json", SkippedFile.METADATA,
        "saved-dataset/state.json", SkippedFile.METADATA), skipped(m, input));
    List<JsonNode> q = quarantine();
    assertEquals(1, q.size());
    assertTrue(q.get(0).get("source_file").asText().endsWith("saved-dataset/data-00000-of-00002.arrow"));
    assertEquals(3, q.get(0).get("source_row").asLong());
    assertEquals("rejected", q.get(0).get("field").asText());
    List<PreparedPair> kept = PreparedShardReader.read(Storage.local(), dir.resolve("out/train/shard-00000.parquet")
        .toString());
    PreparedPair french = kept.stream().filter(p -> p.sourceFile().endsWith("data-00001-of-00002.arrow")
        && p.sourceRow() == 2).findFirst().orElseThrow();
    assertTrue(french.chosenText().startsWith("Bonjour \u00e9t\u00e9 \uD83D\uDE00"), french.chosenText());
  }

  @Test
  void datasetDictReadsTheConfiguredSplitOnly() throws IOException {
    Path input = fixtures().resolve("dataset-dict");
    PreparedManifest train = prepare(config(), input);
    assertEquals(3, train.counts().read());
    assertEquals(Map.of("identical_responses", 1L), train.counts().reasons());
    assertEquals(List.of("ultrafeedback"), List.copyOf(train.input().formats().values()));
    assertEquals(Map.of("dataset-dict/dataset_dict.json", SkippedFile.METADATA,
        "dataset-dict/test", SkippedFile.OTHER_SPLIT,
        "dataset-dict/train/dataset_info.json", SkippedFile.METADATA,
        "dataset-dict/train/state.json", SkippedFile.METADATA), skipped(train, input));
    assertEquals(2, quarantine().get(0).get("source_row").asLong());

    PreparedManifest test = prepare(config("prepare.dataset_split=test"), input);
    assertEquals(2, test.counts().read());
    assertEquals(2, test.counts().kept());
    assertTrue(test.input().files().get(0).path().endsWith("dataset-dict/test/data-00000-of-00001.arrow"));
    assertTrue(!test.fingerprint().equals(train.fingerprint()));

    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> prepare(config("prepare.dataset_split=validation"), input));
    assertTrue(e.getMessage().contains("splits [train, test]") && e.getMessage().contains("prepare.dataset_split"),
        e.getMessage());
  }

  @Test
  void hubStyleShardsAreReadForTheConfiguredSplitAndTheRestIsListed() throws IOException {
    Path repo = dir.resolve("hub-repo");
    writeParquet(repo.resolve("data/train-00000-of-00002.parquet"), "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: yes\","
        + " \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: no\"}");
    writeParquet(repo.resolve("data/train-00001-of-00002.parquet"), "{\"chosen\": \"\\n\\nHuman: b\\n\\nAssistant: yes\","
        + " \"rejected\": \"\\n\\nHuman: b\\n\\nAssistant: no\"}");
    writeParquet(repo.resolve("data/test-00000-of-00001.parquet"), "{\"chosen\": \"\\n\\nHuman: c\\n\\nAssistant: yes\","
        + " \"rejected\": \"\\n\\nHuman: c\\n\\nAssistant: no\"}");
    Files.writeString(repo.resolve("README.md"), "---\nconfigs:\n- config_name: default\n---\n");
    PreparedManifest m = prepare(config("prepare.template=hh"), repo);
    assertEquals(2, m.counts().read());
    assertEquals(2, m.counts().kept());
    assertEquals(List.of("data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"),
        m.input().files().stream().map(f -> f.path().substring(f.path().indexOf("data/"))).toList());
    assertEquals(Map.of("hub-repo/README.md", SkippedFile.UNKNOWN,
        "hub-repo/data/test-00000-of-00001.parquet", SkippedFile.OTHER_SPLIT), skipped(m, repo));
  }

  /** One parquet file of the given JSON rows at exactly {@code file} (Spark writes a folder of part files). */
  private void writeParquet(Path file, String... rows) throws IOException {
    Path tmp = dir.resolve("tmp-" + file.getFileName());
    spark.read().json(spark.createDataset(List.of(rows), Encoders.STRING())).coalesce(1).write().parquet(tmp.toString());
    Path part;
    try (var files = Files.list(tmp)) {
      part = files.filter(f -> f.getFileName().toString().endsWith(".parquet")).findFirst().orElseThrow();
    }
    Files.createDirectories(file.getParent());
    Files.move(part, file);
  }
}
