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
    try (var gz = new java.util.zip.GZIPOutputStream(Files.newOutputStream(dir.resolve("in/more.jsonl.gz")))) {
      gz.write((hh("Compressed?", "Yes, gzip.", "No.") + "\n").getBytes(StandardCharsets.UTF_8));
    }
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
    assertEquals(7, m.counts().read());
    assertEquals(6, m.counts().kept());
    assertEquals(1, m.counts().quarantined());
    assertEquals(Map.of("null_field", 1L), m.counts().reasons());
    Map<String, String> formats = new TreeMap<>();
    m.input().formats().forEach((f, fmt) -> formats.put(f.substring(f.lastIndexOf('/') + 1).replaceAll("part-.*", "part"), fmt));
    assertEquals(Map.of("hh.jsonl", "hh-rlhf", "more.jsonl.gz", "hh-rlhf", "trl.json", "trl", "part", "ultrafeedback"),
        formats);
    assertEquals(4, m.input().files().size());
    assertEquals(List.of("json_array", "jsonl", "jsonl", "parquet"),
        m.input().files().stream().map(InputFile::layout).sorted().toList());

    List<PreparedPair> train = shard(out, "train/shard-00000.parquet");
    assertEquals(6, train.size());
    assertTrue(train.stream().anyMatch(p -> p.chosenText().equals(" Yes, gzip.") && p.sourceRow() == 1));
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

  @Test
  void quarantinesEveryReasonWithFileRowAndFieldWhateverTheSplits() throws IOException {
    String longPrompt = "word ".repeat(30);
    List<byte[]> lines = new ArrayList<>();
    lines.add(utf8(hh("Hello", "Hi there!", "Leave.")));                                     // 1 kept
    lines.add(utf8(""));                                                                   // 2 blank: not a row
    lines.add(utf8("{\"prompt\": \"q\", \"chosen\": \"a\","));                                 // 3 malformed_json
    byte[] badUtf8 = utf8(hh("caf\u00e9", "yes", "no"));
    badUtf8[30] = (byte) 0xC3;
    badUtf8[31] = (byte) 0x28;
    lines.add(badUtf8);                                                                    // 4 invalid_utf8
    lines.add(utf8("\"just a string\""));                                                  // 5 not_an_object
    lines.add(utf8("{\"prompt\": \"q\", \"chosen\": \"a\"}"));                                  // 6 missing_field
    lines.add(utf8("{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": null}"));                // 7 null_field
    lines.add(utf8("{\"prompt\": \"q\", \"chosen\": true, \"rejected\": \"b\"}"));                // 8 wrong_type
    lines.add(utf8("{\"prompt\": \"\", \"chosen\": \"a\", \"rejected\": \"b\"}"));                // 9 empty_prompt
    lines.add(utf8("{\"prompt\": \"q\", \"chosen\": \"  \", \"rejected\": \"b\"}"));              // 10 empty_response
    lines.add(utf8(hh("Same?", "Yes", "Yes")));                                            // 11 identical_responses
    lines.add(utf8("{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: b\\n\\nAssistant: y\"}")); // 12 prompt_mismatch
    lines.add(utf8("{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: a\"}")); // 13 no_assistant_turn
    lines.add(utf8("{\"prompt\": [{\"role\": \"tool\", \"content\": \"{}\"}], \"chosen\": \"a\", \"rejected\": \"b\"}")); // 14 template_error
    lines.add(utf8(hh(longPrompt, "a".repeat(120), "b")));                                 // 15 prompt_too_long
    lines.add(utf8("  "));                                                                 // 16 blank
    lines.add(utf8("{\"rejected\": \"\\n\\nHuman: Hello\\n\\nAssistant: Leave.\", \"chosen\": \"\\n\\nHuman: Hello\\n\\nAssistant: Hi there!\"}")); // 17 duplicate of 1
    lines.add(utf8(hh("Last", "one", "two")));                                             // 18 kept
    lines.add(utf8(hh("long " + "z".repeat(600), "a", "b")));                              // 19 row_too_large
    Path file = dir.resolve("in/mixed.jsonl");
    Files.createDirectories(file.getParent());
    try (var out = Files.newOutputStream(file)) {
      for (byte[] l : lines) {
        out.write(l);
        out.write('\n');
      }
    }
    Path out = dir.resolve("out");
    PreparedManifest m = new PrepareJob(spark, config("prepare.long_prompt=quarantine", "prepare.max_length=128",
        "prepare.max_row_bytes=512", "prepare.max_quarantine_fraction=1.0"), 1).withMaxSplitBytes(64)
        .run(List.of(file.toString()), out.toString()).manifest();
    assertEquals(17, m.counts().read());
    assertEquals(2, m.counts().kept());
    assertEquals(15, m.counts().quarantined());
    Map<String, Long> expected = new TreeMap<>();
    for (QuarantineReason reason : QuarantineReason.values()) {
      expected.put(reason.code(), 1L);
    }
    assertEquals(expected, m.counts().reasons());

    Map<Long, String> byRow = new TreeMap<>();
    for (JsonNode q : quarantine(out)) {
      assertEquals("file:" + file, q.get("source_file").asText());
      byRow.put(q.get("source_row").asLong(), q.get("reason").asText() + "|" + q.get("field").asText());
    }
    Map<Long, String> rows = new TreeMap<>(Map.ofEntries(
        Map.entry(3L, "malformed_json|null"), Map.entry(4L, "invalid_utf8|null"), Map.entry(5L, "not_an_object|null"),
        Map.entry(6L, "missing_field|rejected"), Map.entry(7L, "null_field|rejected"), Map.entry(8L, "wrong_type|chosen"),
        Map.entry(9L, "empty_prompt|prompt"), Map.entry(10L, "empty_response|chosen"),
        Map.entry(11L, "identical_responses|chosen"), Map.entry(12L, "prompt_mismatch|rejected"),
        Map.entry(13L, "no_assistant_turn|rejected"), Map.entry(14L, "template_error|prompt"),
        Map.entry(15L, "prompt_too_long|prompt"), Map.entry(17L, "duplicate_pair|null"),
        Map.entry(19L, "row_too_large|null")));
    assertEquals(rows, byRow);
    JsonNode dup = quarantine(out).stream().filter(q -> q.get("source_row").asLong() == 17).findFirst().orElseThrow();
    assertTrue(dup.get("detail").asText().startsWith("the same prompt, chosen and rejected as file:" + file + " row 1 "),
        dup.get("detail").asText());
    assertEquals(new String(lines.get(16), StandardCharsets.UTF_8), dup.get("raw").asText());
    JsonNode utf = quarantine(out).stream().filter(q -> q.get("source_row").asLong() == 4).findFirst().orElseThrow();
    assertArrayEquals(badUtf8, java.util.Base64.getDecoder().decode(utf.get("raw_base64").asText()));
    assertEquals(List.of(1L, 18L), shard(out, "train/shard-00000.parquet").stream().map(PreparedPair::sourceRow).sorted().toList());
  }

  @Test
  void trlMarginsTravelIntoTheShardsAndBadMarginsAreQuarantinedNamingTheField() throws IOException {
    String pair = "{\"prompt\": \"%s\", \"chosen\": \"yes\", \"rejected\": \"no\"%s}";
    Path file = write(dir.resolve("in/margins.trl.jsonl"), List.of(
        String.format(pair, "q1", ", \"margin\": 0.5"),       // 1 kept, 0.5
        String.format(pair, "q2", ", \"margin\": 3"),         // 2 kept, 3.0
        String.format(pair, "q3", ""),                        // 3 kept, no margin: 0
        String.format(pair, "q4", ", \"margin\": \"1.0\""),   // 4 wrong_type
        String.format(pair, "q5", ", \"margin\": null"),      // 5 null_field
        String.format(pair, "q6", ", \"margin\": 1e400")));   // 6 wrong_type (not a finite double)
    Path out = dir.resolve("out");
    PreparedManifest m = prepare(config("prepare.format=trl", "prepare.max_quarantine_fraction=1.0"), out, file)
        .manifest();
    assertEquals(3, m.counts().kept());
    Map<Long, String> byRow = new TreeMap<>();
    for (JsonNode q : quarantine(out)) {
      byRow.put(q.get("source_row").asLong(), q.get("reason").asText() + "|" + q.get("field").asText());
    }
    assertEquals(Map.of(4L, "wrong_type|margin", 5L, "null_field|margin", 6L, "wrong_type|margin"), byRow);
    Map<Long, Double> margins = new TreeMap<>();
    shard(out, "train/shard-00000.parquet").forEach(p -> margins.put(p.sourceRow(), p.margin()));
    assertEquals(Map.of(1L, 0.5, 2L, 3.0, 3L, 0.0), margins);

    Path plain = write(dir.resolve("in/plain.trl.jsonl"), List.of(String.format(pair, "q1", "")));
    Path plainOut = dir.resolve("plain-out");
    prepare(config("prepare.format=trl"), plainOut, plain);
    assertEquals(null, shard(plainOut, "train/shard-00000.parquet").get(0).margin(), "no margin column, no margin");
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void accountsForEveryRowOfThousandsMixedWithGarbageAndBalancesShardsByTokens() throws IOException {
    Path file = dir.resolve("in/big.jsonl");
    SyntheticPairs.Mix mix = SyntheticPairs.writeMixed(file, 3000, 600, 7);
    Path out = dir.resolve("out");
    PreparedManifest m = new PrepareJob(spark, config("prepare.eval_fraction=0.1", "prepare.num_shards=3",
        "prepare.max_length=128", "prepare.max_prompt_length=48"), 1).withMaxSplitBytes(256 << 10)
        .run(List.of(file.toString()), out.toString()).manifest();
    PreparedManifest.Counts c = m.counts();
    assertEquals(mix.rows(), c.read());
    assertEquals(c.read(), c.kept() + c.quarantined());
    assertEquals(mix.valid(), c.kept());
    assertEquals(Map.of("malformed_json", mix.malformed(), "invalid_utf8", mix.invalidUtf8(),
        "duplicate_pair", mix.duplicates()), c.reasons());
    assertEquals(c.quarantined(), quarantine(out).size());
    assertTrue(c.truncated() > 0, "some long rows were truncated");

    PreparedManifest.Split train = m.splits().get("train");
    PreparedManifest.Split eval = m.splits().get("eval");
    assertEquals(c.kept(), train.rows() + eval.rows());
    assertTrue(eval.rows() > 200 && eval.rows() < 400, "about 10% eval: " + eval.rows());
    java.util.Set<String> trainPrompts = new java.util.HashSet<>();
    int maxRowTokens = 0;
    for (String split : List.of("train", "eval")) {
      List<PreparedManifest.Shard> shards = m.splits().get(split).shards();
      assertEquals(3, shards.size());
      long minRows = Long.MAX_VALUE;
      long maxRows = 0;
      long minTokens = Long.MAX_VALUE;
      long maxTokens = 0;
      for (PreparedManifest.Shard sh : shards) {
        List<PreparedPair> rows = shard(out, sh.file());
        assertEquals(sh.rows(), rows.size());
        long stepTokens = 0;
        for (int i = 0; i < rows.size(); i++) {
          PreparedPair p = rows.get(i);
          int rowTokens = 2 * p.promptLen() + p.chosenLen() + p.rejectedLen();
          stepTokens += rowTokens;
          maxRowTokens = Math.max(maxRowTokens, rowTokens);
          assertTrue(p.promptLen() + Math.max(p.chosenLen(), p.rejectedLen()) <= 128);
          if (i > 0) {
            PreparedPair prev = rows.get(i - 1);
            assertTrue(prev.promptLen() + Math.max(prev.chosenLen(), prev.rejectedLen())
                <= p.promptLen() + Math.max(p.chosenLen(), p.rejectedLen()), "grouped by length within a shard");
          }
          if (split.equals("train")) {
            trainPrompts.add(p.promptText());
          } else {
            assertFalse(trainPrompts.contains(p.promptText()), "a prompt in both splits: " + p.promptText());
          }
        }
        assertEquals(sh.stepTokens(), stepTokens);
        minRows = Math.min(minRows, sh.rows());
        maxRows = Math.max(maxRows, sh.rows());
        minTokens = Math.min(minTokens, sh.stepTokens());
        maxTokens = Math.max(maxTokens, sh.stepTokens());
      }
      assertTrue(maxRows - minRows <= 1, split + " rows per shard differ by more than one: " + minRows + ".." + maxRows);
      assertTrue(maxTokens - minTokens <= maxRowTokens, split + " tokens per shard: " + minTokens + ".." + maxTokens);
    }
    LengthHistogram seq = m.histograms().get("train").get("sequence_len");
    assertEquals(train.rows(), seq.counts().stream().mapToLong(Long::longValue).sum());
    assertTrue(seq.max() <= 128);
  }

  @Test
  void sameInputsAndSettingsGiveIdenticalBytesAndARerunIsANoOp() throws Exception {
    Path file = dir.resolve("in/pairs.jsonl");
    SyntheticPairs.writeMixed(file, 400, 40, 3);
    JobConfig cfg = config("prepare.num_shards=2", "prepare.eval_fraction=0.2");
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    PreparedManifest ma = new PrepareJob(spark, cfg, 1).withMaxSplitBytes(8 << 10).run(List.of(file.toString()), a.toString()).manifest();
    PreparedManifest mb = new PrepareJob(spark, cfg, 1).run(List.of(file.toString()), b.toString()).manifest();
    List<String> written = new ArrayList<>();
    try (var walk = Files.walk(a)) {
      walk.filter(Files::isRegularFile).forEach(f -> written.add(a.relativize(f).toString()));
    }
    java.util.Collections.sort(written);
    assertEquals(List.of("eval/shard-00000.parquet", "eval/shard-00001.parquet", "manifest.json",
        "quarantine/part-00000.jsonl", "train/shard-00000.parquet", "train/shard-00001.parquet"), written);
    for (String f : written) {
      if (!f.equals("manifest.json")) {
        assertArrayEquals(Files.readAllBytes(a.resolve(f)), Files.readAllBytes(b.resolve(f)), f);
      }
    }
    JsonNode ja = M.readTree(a.resolve("manifest.json").toFile());
    JsonNode jb = M.readTree(b.resolve("manifest.json").toFile());
    ((com.fasterxml.jackson.databind.node.ObjectNode) ja).remove("created_at");
    ((com.fasterxml.jackson.databind.node.ObjectNode) jb).remove("created_at");
    assertEquals(ja, jb);
    assertEquals(ma.fingerprint(), mb.fingerprint());

    long before = Files.getLastModifiedTime(a.resolve("train/shard-00000.parquet")).toMillis();
    PrepareJob.Result again = new PrepareJob(spark, cfg, 1).run(List.of(file.toString()), a.toString());
    assertTrue(again.upToDate());
    assertEquals(ma.createdAt(), again.manifest().createdAt());
    assertEquals(before, Files.getLastModifiedTime(a.resolve("train/shard-00000.parquet")).toMillis());

    PrepareJob.Result changed = new PrepareJob(spark, config("prepare.num_shards=1", "prepare.eval_fraction=0.2"), 1)
        .run(List.of(file.toString()), a.toString());
    assertFalse(changed.upToDate());
    assertEquals(1, changed.manifest().splits().get("train").shards().size());
    assertFalse(Files.exists(a.resolve("train/shard-00001.parquet")), "old shards are removed");

    Files.writeString(file, SyntheticPairs.hhRow(new java.util.Random(1), 99999) + "\n", java.nio.file.StandardOpenOption.APPEND);
    PrepareJob.Result grown = new PrepareJob(spark, config("prepare.num_shards=1", "prepare.eval_fraction=0.2"), 1)
        .run(List.of(file.toString()), a.toString());
    assertFalse(grown.upToDate());
    assertEquals(changed.manifest().counts().read() + 1, grown.manifest().counts().read());
  }

  @Test
  void aFlippedByteInAShardIsNotUpToDateAndFailsItsReaderAndTheReferenceCheck() throws Exception {
    Path file = write(dir.resolve("in/pairs.jsonl"), List.of(hh("a", "x", "y"), hh("b", "x", "y"), hh("c", "x", "y")));
    Path out = dir.resolve("out");
    JobConfig cfg = config();
    PreparedManifest m = prepare(cfg, out, file).manifest();
    Path shard = out.resolve("train/shard-00000.parquet");
    assertEquals(3, PreparedShardReader.read(Storage.local(), shard.toString()).size());
    byte[] b = Files.readAllBytes(shard);
    b[b.length / 2] ^= 0x01; // same size, one bit: only the sha256 tells
    Files.write(shard, b);

    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> PreparedShardReader.read(Storage.local(), shard.toString()));
    assertTrue(e.getMessage().startsWith("shard " + shard + " does not match " + out + "/manifest.json: sha256 "),
        e.getMessage());
    assertTrue(e.getMessage().contains("but the manifest records " + m.splits().get("train").shards().get(0).sha256()),
        e.getMessage());
    IllegalStateException all = assertThrows(IllegalStateException.class, () -> ShardChecksums.verifyAll(spark,
        out.toString(), m.splits().get("train").shards()));
    assertTrue(all.getMessage().startsWith("1 shard(s) do not match " + out + "/manifest.json"), all.getMessage());

    PrepareJob.Result again = prepare(cfg, out, file);
    assertFalse(again.upToDate(), "a damaged shard is rewritten, not kept as up to date");
    assertEquals(3, PreparedShardReader.read(Storage.local(), shard.toString()).size());
    assertTrue(prepare(cfg, out, file).upToDate());
  }

  @Test
  void rowsLargerThanMaxRowBytesAreQuarantinedAsRowTooLargeInEveryLayout() throws IOException {
    String big = hh("big " + "x".repeat(20_000), "x", "y"); // about 20 kB against a limit of 4 kB
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      lines.add(i == 17 || i == 30 ? big : hh("p" + i, "x", "y"));
    }
    Path jsonl = write(dir.resolve("in/lines.jsonl"), lines);
    write(dir.resolve("in/array.json"), List.of("[" + hh("a0", "x", "y") + ", " + big + ", " + hh("a2", "x", "y")
        + "]"));
    Path parquet = dir.resolve("in/table");
    spark.read().json(spark.createDataset(List.of(hh("q0", "x", "y"), big, hh("q2", "x", "y")), Encoders.STRING()))
        .coalesce(1).write().parquet(parquet.toString());
    Path out = dir.resolve("out");
    // splits of 8 kB: the big lines cross split boundaries
    PreparedManifest m = new PrepareJob(spark, config("prepare.max_row_bytes=4096"), 1).withMaxSplitBytes(8 << 10)
        .run(List.of(dir.resolve("in").toString()), out.toString()).manifest();
    assertEquals(46, m.counts().read());
    assertEquals(42, m.counts().kept());
    assertEquals(Map.of("row_too_large", 4L), m.counts().reasons());
    List<JsonNode> q = quarantine(out);
    List<String> where = q.stream().map(n -> n.get("source_file").asText().replaceAll(".*/in/", "") + "#"
        + n.get("source_row").asLong()).sorted().toList();
    assertEquals(4, where.size());
    assertEquals(List.of("array.json#2", "lines.jsonl#18", "lines.jsonl#31"), where.subList(0, 3));
    assertTrue(where.get(3).startsWith("table/part-") && where.get(3).endsWith("#2"), where.get(3));
    for (JsonNode n : q) {
      assertEquals("row_too_large", n.get("reason").asText());
      assertTrue(n.get("detail").asText().matches("the row is \\d+ bytes, more than prepare.max_row_bytes \\(4096\\)"
          + "; raw holds its first \\d+ bytes"), n.get("detail").asText());
      assertTrue(n.get("raw").asText().length() <= 1024 && n.get("raw").asText().contains("big xxx"));
    }
    List<Long> rows = new ArrayList<>();
    for (PreparedPair p : shard(out, "train/shard-00000.parquet")) {
      if (p.sourceFile().equals("file:" + jsonl)) {
        rows.add(p.sourceRow());
      }
    }
    java.util.Collections.sort(rows);
    assertEquals(38, rows.size());
    assertFalse(rows.contains(18L) || rows.contains(31L));
    assertEquals(40L, rows.get(37), "line numbers stay exact past the skipped lines");
  }

  @Test
  void unusableInputsFailWithAClearErrorNamingThePath() throws IOException {
    Path missing = dir.resolve("nope.jsonl");
    IllegalArgumentException e1 = assertThrows(IllegalArgumentException.class,
        () -> prepare(config(), dir.resolve("out"), missing));
    assertEquals("input path " + missing + " does not exist", e1.getMessage());
    Path csv = write(dir.resolve("in/data.csv"), List.of("a,b"));
    IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class,
        () -> prepare(config(), dir.resolve("out"), csv));
    assertTrue(e2.getMessage().startsWith("input file " + csv + " is not .jsonl"), e2.getMessage());
    Path sft = write(dir.resolve("sft/chat.jsonl"), List.of("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"));
    IllegalArgumentException e3 = assertThrows(IllegalArgumentException.class,
        () -> prepare(config(), dir.resolve("out"), dir.resolve("sft")));
    assertTrue(e3.getMessage().startsWith("cannot detect the format of file:" + sft + ": its first 1 rows have the "
        + "fields [messages]"), e3.getMessage());
    assertFalse(Files.exists(dir.resolve("out/manifest.json")));
    Path inputs = write(dir.resolve("data/pairs.jsonl"), List.of(hh("a", "b", "c"))).getParent();
    IllegalArgumentException e4 = assertThrows(IllegalArgumentException.class,
        () -> prepare(config(), inputs.resolve("prepared"), inputs));
    assertTrue(e4.getMessage().startsWith("output folder " + inputs.resolve("prepared") + " is inside input"),
        e4.getMessage());
  }

  @Test
  void autoTokenizerIsTheModelFoldersOwnAndASmallerModelVocabularyFailsBeforeAnySparkJob() throws IOException {
    Path input = write(dir.resolve("in/pairs.jsonl"), List.of(hh("Hi", "Hello!", "Go away.")));
    Path model = ByteTokenizer.write(dir.resolve("model"), null);
    Files.writeString(model.resolve("config.json"), "{\"model_type\": \"llama\", \"vocab_size\": 258}");
    PreparedManifest m = prepare(config("prepare.tokenizer=auto", "model.path=" + model), dir.resolve("out"), input)
        .manifest();
    assertEquals(model.toString(), m.tokenizer().spec());
    assertEquals("auto", m.tokenizer().setting());
    assertEquals("auto: the tokenizer.json of model.path " + model, m.tokenizer().chosenBecause());
    assertEquals(258, m.tokenizer().vocabSize());
    PreparedPair pair = shard(dir.resolve("out"), "train/shard-00000.parquet").get(0);
    assertEquals(pair.promptText().length(), pair.promptLen()); // one id per byte: the model folder's tokenizer
    assertEquals('\n' + 2, pair.promptIds()[0]);

    PreparedManifest builtin = prepare(config("prepare.tokenizer=auto"), dir.resolve("out-builtin"), input).manifest();
    assertEquals("builtin", builtin.tokenizer().spec());
    assertEquals(4096, builtin.tokenizer().vocabSize());

    // The built-in tokenizer (4096 ids) for a model with 258 embeddings: refused on the driver, naming both.
    long jobsBefore = spark.sparkContext().statusTracker().getJobIdsForGroup(null).length;
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> prepare(
        config("prepare.tokenizer=builtin", "model.path=" + model), dir.resolve("out-mismatch"), input));
    assertEquals("tokenizer 'builtin' has 4096 token ids, but model " + model + " (config.json vocab_size 258) has "
        + "embeddings for only 258: prepared ids could overflow the embedding. Use the model's own tokenizer "
        + "(prepare.tokenizer=auto or " + model + ") or the model this tokenizer belongs to", e.getMessage());
    assertEquals(jobsBefore, spark.sparkContext().statusTracker().getJobIdsForGroup(null).length);
    assertFalse(Files.exists(dir.resolve("out-mismatch")));
  }

  @Test
  void anInputOfOnlyBadRowsWritesItsQuarantineAndManifestThenFails() throws IOException {
    Path file = write(dir.resolve("in/bad.jsonl"), List.of("not json", "{\"chosen\": 1, \"rejected\": 2}", "[]"));
    Files.writeString(dir.resolve("in/empty.jsonl"), "");
    Path out = dir.resolve("out");
    // even when any share of bad rows is allowed: nothing kept is never a success
    JobConfig cfg = config("prepare.num_shards=2", "prepare.max_quarantine_fraction=1.0");
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> new PrepareJob(spark, cfg, 1)
        .run(List.of(dir.resolve("in").toString()), out.toString()));
    assertTrue(e.getMessage().startsWith("prepare: quarantined 3 of 3 rows (100.0%: {malformed_json=1, "
        + "not_an_object=1, wrong_type=1}), no row was kept; see " + out + "/quarantine/"), e.getMessage());
    PreparedManifest m = PreparedManifest.read(Storage.local(), out.toString());
    assertEquals(3, m.counts().read());
    assertEquals(0, m.counts().kept());
    assertEquals(Map.of("malformed_json", 1L, "wrong_type", 1L, "not_an_object", 1L), m.counts().reasons());
    assertEquals(2, m.splits().get("train").shards().size());
    assertEquals(0, shard(out, "train/shard-00001.parquet").size());
    assertEquals(List.of(1L, 2L, 3L), quarantine(out).stream().map(q -> q.get("source_row").asLong()).toList());
    assertTrue(quarantine(out).stream().allMatch(q -> q.get("source_file").asText().equals("file:" + file)));
  }

  @Test
  void moreQuarantinedRowsThanAllowedFailAfterWritingAndAgainOnARerun() throws IOException {
    Path file = write(dir.resolve("in/pairs.jsonl"), List.of(hh("a", "x", "y"), "not json", hh("b", "x", "y"),
        "{}", hh("c", "x", "y")));
    PrepareJob.Result ok = prepare(config(), dir.resolve("ok"), file); // 2 of 5 bad: within the default 0.5
    assertEquals(3, ok.manifest().counts().kept());
    Path out = dir.resolve("out");
    JobConfig strict = config("prepare.max_quarantine_fraction=0.25");
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> prepare(strict, out, file));
    assertTrue(e.getMessage().startsWith("prepare: quarantined 2 of 5 rows (40.0%: {malformed_json=1, "
        + "missing_field=1}), more than prepare.max_quarantine_fraction (0.25); see " + out + "/quarantine/"),
        e.getMessage());
    assertEquals(2, quarantine(out).size());
    assertEquals(3, PreparedManifest.read(Storage.local(), out.toString()).counts().kept());
    IllegalStateException again = assertThrows(IllegalStateException.class, () -> prepare(strict, out, file));
    assertEquals(e.getMessage(), again.getMessage(), "an up-to-date folder that failed fails again");
  }

  @Test
  void filesSkippedInInputFoldersAreCountedAndListedAndUnknownOnesDoNotFail() throws IOException {
    Path in = dir.resolve("in");
    write(in.resolve("train.jsonl"), List.of(hh("a", "x", "y")));
    write(in.resolve("sub/more.json"), List.of("[" + hh("b", "x", "y") + "]"));
    write(in.resolve("_SUCCESS"), List.of());
    write(in.resolve(".hidden.jsonl"), List.of(hh("c", "x", "y")));
    write(in.resolve("_tmp/part.jsonl"), List.of(hh("d", "x", "y")));
    write(in.resolve("part-1.jsonl.tmp"), List.of(hh("e", "x", "y")));
    write(in.resolve("notes.txt"), List.of(hh("f", "x", "y")));
    write(in.resolve("state.json"), List.of("{", "  \"_data_files\": [{\"filename\": \"data.arrow\"}]", "}"));
    PreparedManifest m = prepare(config(), dir.resolve("out"), in).manifest();
    assertEquals(2, m.counts().read());
    assertEquals(2, m.counts().kept());
    assertEquals(6, m.input().skippedCount());
    List<String> skipped = m.input().skipped().stream()
        .map(f -> in.relativize(Path.of(java.net.URI.create(f.path()).getPath())) + " " + f.reason()).toList();
    assertEquals(List.of(".hidden.jsonl hidden", "_SUCCESS hidden", "_tmp hidden", "notes.txt unknown",
        "part-1.jsonl.tmp temporary", "state.json metadata"), skipped);
    JsonNode json = M.readTree(dir.resolve("out/manifest.json").toFile()).get("input");
    assertEquals(6, json.get("skipped_count").asInt());
    assertEquals("metadata", json.get("skipped").get(5).get("reason").asText());
  }
}
