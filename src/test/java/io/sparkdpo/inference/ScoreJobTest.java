package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.PreparedShardReader;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ScoreJobTest {
  static final Storage STORAGE = Storage.local();
  static final String[][] TRL = {
      {"The whale was", "a great and terrible beast of the sea", "small"},
      {"Call me", "Ishmael, said the sailor with a smile", "nothing at all, he said"},
      {"The captain", "stood on the deck and looked at the waves", "slept"},
      {"In the morning", "the ship sailed out of the harbour", "it rained and rained and rained all day long"},
      {"Queequeg", "was a harpooner from a distant island", "ate"},
      {"The sea", "is wide", "is wide and deep and full of whales and ships"}};

  @TempDir
  static Path dir;
  static Path rm;
  static Path prepared;
  static Path samples;

  /** A reward model folder (the tiny Llama with a seeded score head), TRL pairs prepared with hh + EOS, samples. */
  @BeforeAll
  static void fixtures() throws IOException {
    rm = dir.resolve("rm");
    try (CausalLM m = CausalLM.loadScorer(CausalLM.BUILTIN_TINY, STORAGE, Device.cpu(), 31)) {
      m.save(rm.toString(), STORAGE, DataType.FLOAT32);
    }
    Path trl = dir.resolve("pairs.jsonl");
    StringBuilder sb = new StringBuilder();
    StringBuilder rows = new StringBuilder();
    for (int i = 0; i < TRL.length; i++) {
      Map<String, String> row = new LinkedHashMap<>();
      row.put("prompt", TRL[i][0]);
      row.put("chosen", TRL[i][1]);
      row.put("rejected", TRL[i][2]);
      sb.append(Json.LINES.writeValueAsString(row)).append('\n');
      for (int k = 1; k <= 2; k++) {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("prompt", TRL[i][0]);
        s.put("continuation", TRL[i][k]);
        s.put("pair", i);
        rows.append(Json.LINES.writeValueAsString(s)).append('\n');
      }
    }
    Files.writeString(trl, sb.toString());
    samples = dir.resolve("samples.jsonl");
    Files.writeString(samples, rows.toString());
    prepared = dir.resolve("prepared");
    JobConfig prep = ConfigLoader.load(null, List.of("model.path=" + rm, "prepare.template=hh",
        "prepare.add_eos=true", "prepare.max_length=64", "prepare.max_prompt_length=16", "prepare.eval_fraction=0.0",
        "prepare.num_shards=1"));
    new PrepareJob(SharedSpark.get(), prep, 1).run(List.of(trl.toString()), prepared.toString());
  }

  static JobConfig config(String... overrides) {
    List<String> all = new ArrayList<>(List.of("model.path=builtin:tiny", "score.model=" + rm,
        "score.prepared=" + prepared, "score.batch_tokens=64",
        // not the template the data was prepared with: score.prepared's manifest must win
        "prepare.template=chatml"));
    all.addAll(List.of(overrides));
    return ConfigLoader.load(null, all);
  }

  static ScoreJob.Result score(JobConfig cfg, Path out) {
    return new ScoreJob(SharedSpark.get(), cfg).run(samples.toString(), out.toString());
  }

  static List<Row> scores(Path out) {
    return SharedSpark.get().read().parquet(out.resolve(ScoreJob.SCORES).toString()).collectAsList();
  }

  @Test
  void executorScoresEqualOneJvmScoresOfThePreparedTokensWhateverThePartitioning() {
    ScoreJob.Result one = score(config("score.partitions=1"), dir.resolve("one"));
    ScoreJob.Result three = score(config("score.partitions=3"), dir.resolve("three"));
    assertFalse(one.upToDate());
    assertEquals(12, one.rows());
    assertEquals("reward_model", one.selectorKind());
    assertEquals("hh", one.manifest().path("encoding").path("template").asText());
    List<Row> a = scores(dir.resolve("one"));
    List<Row> b = scores(dir.resolve("three"));
    assertEquals(a, b, "bit for bit, in input order, with 1 or 3 tasks");

    // The reward model's training rows: prompt + chosen and prompt + rejected ids of the prepared folder.
    PreparedManifest m = PreparedManifest.read(STORAGE, prepared.toString());
    List<PreparedPair> pairs = new ArrayList<>();
    for (String f : m.shardFiles(prepared.toString(), PreparedManifest.TRAIN)) {
      pairs.addAll(PreparedShardReader.read(STORAGE, f));
    }
    assertEquals(TRL.length, pairs.size());
    long firstRow = pairs.stream().mapToLong(PreparedPair::sourceRow).min().orElseThrow();
    Map<Long, PreparedPair> byRow = new HashMap<>();
    pairs.forEach(p -> byRow.put(p.sourceRow() - firstRow, p));
    double worst = 0;
    try (CausalLM model = CausalLM.load(rm.toString(), STORAGE, Device.cpu())) {
      for (Row r : a) {
        int pair = (int) r.getLong(r.fieldIndex("pair"));
        PreparedPair p = byRow.get((long) pair);
        boolean chosen = r.getString(r.fieldIndex("continuation")).equals(TRL[pair][1]);
        int[] response = chosen ? p.chosenIds() : p.rejectedIds();
        int[] ids = new int[p.promptIds().length + response.length];
        System.arraycopy(p.promptIds(), 0, ids, 0, p.promptIds().length);
        System.arraycopy(response, 0, ids, p.promptIds().length, response.length);
        double expected = BatchScorer.scores(model, new int[][] {ids})[0];
        double got = r.getDouble(r.fieldIndex(ScoreJob.SCORE_COLUMN));
        worst = Math.max(worst, Math.abs(expected - got));
      }
    }
    assertTrue(worst <= 1e-6, "executor scores vs one JVM, each row alone: max |difference| " + worst);

    // Same input, selector and settings: nothing to do.
    assertTrue(score(config("score.partitions=3"), dir.resolve("one")).upToDate());
  }

  @Test
  void relabelledPairsFollowTheScores() throws IOException {
    ScoreJob.Result r = score(config("score.relabel=true"), dir.resolve("relabel"));
    Map<String, Map<String, Double>> byPrompt = new LinkedHashMap<>();
    for (Row row : scores(dir.resolve("relabel"))) {
      byPrompt.computeIfAbsent(row.getString(row.fieldIndex("prompt")), k -> new HashMap<>())
          .put(row.getString(row.fieldIndex("continuation")), row.getDouble(row.fieldIndex("score")));
    }
    List<String> lines = Files.readAllLines(dir.resolve("relabel").resolve(ScoreJob.PAIRS));
    assertEquals(r.pairs(), lines.size());
    assertEquals(TRL.length, r.pairs() + r.manifest().path("counts").path("dropped_ties").asLong());
    int flipped = 0;
    for (String line : lines) {
      JsonNode pair = Json.MAPPER.readTree(line);
      Map<String, Double> s = byPrompt.get(pair.get("prompt").asText());
      double chosen = s.get(pair.get("chosen").asText());
      double rejected = s.get(pair.get("rejected").asText());
      assertTrue(chosen > rejected, line);
      flipped += findPair(pair.get("prompt").asText())[1].equals(pair.get("chosen").asText()) ? 0 : 1;
    }
    // An untrained head labels by its own scores, not by the original labels: some pairs come out flipped.
    assertTrue(flipped > 0 && flipped < lines.size(), "flipped " + flipped + " of " + lines.size());
  }

  private static String[] findPair(String prompt) {
    for (String[] p : TRL) {
      if (p[0].equals(prompt)) {
        return p;
      }
    }
    throw new AssertionError(prompt);
  }

  @Test
  void theOracleScoresWithTheRewardFunctionAndSaysSo() {
    ScoreJob.Result r = score(config("score.model=null", "score.reward=" + GenerateJobTest.LENGTH_REWARD),
        dir.resolve("oracle"));
    assertEquals("oracle:length-penalty", r.selector());
    assertEquals("oracle", r.selectorKind());
    for (Row row : scores(dir.resolve("oracle"))) {
      assertEquals(-row.getString(row.fieldIndex("continuation")).length(),
          row.getDouble(row.fieldIndex("score")), 0.0);
    }
    // score.model (--model) may name the reward function itself.
    ScoreJob.Result named = score(config("score.model=" + GenerateJobTest.LENGTH_REWARD), dir.resolve("named"));
    assertEquals("oracle:length-penalty", named.selector());
    assertEquals(scores(dir.resolve("oracle")), scores(dir.resolve("named")));
  }

  @Test
  void badInputFailsOnTheDriverNamingFileAndField() throws IOException {
    Path noContinuation = dir.resolve("bad.jsonl");
    Files.writeString(noContinuation, "{\"prompt\": \"a\", \"text\": \"b\"}\n");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
        new ScoreJob(SharedSpark.get(), config()).run(noContinuation.toString(), dir.resolve("bad").toString()));
    assertTrue(e.getMessage().contains("bad.jsonl") && e.getMessage().contains("'continuation'"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("bad")));

    Path corrupt = dir.resolve("corrupt.jsonl");
    Files.writeString(corrupt, "{\"prompt\": \"a\", \"continuation\": \"b\"}\n{\"prompt\": \"a\", \"contin\n");
    e = assertThrows(IllegalArgumentException.class, () ->
        new ScoreJob(SharedSpark.get(), config()).run(corrupt.toString(), dir.resolve("corrupt").toString()));
    assertTrue(e.getMessage().contains("corrupt.jsonl, row 1: not a JSON object"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("corrupt")));

    Path causal = dir.resolve("causal");
    try (CausalLM m = CausalLM.load(CausalLM.BUILTIN_TINY, STORAGE, Device.cpu())) {
      m.save(causal.toString(), STORAGE, DataType.FLOAT32);
    }
    e = assertThrows(IllegalArgumentException.class, () -> score(config("score.model=" + causal),
        dir.resolve("notrm")));
    assertTrue(e.getMessage().contains("causal/config.json") && e.getMessage().contains("architectures")
        && e.getMessage().contains("LlamaForCausalLM"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("notrm")));

    // A prepared folder of another tokenizer's tokens is refused, naming the manifest field.
    e = assertThrows(IllegalArgumentException.class, () -> score(config("score.prepared=" + dir.resolve("none")),
        dir.resolve("noprep")));
    assertTrue(e.getMessage().contains("not a prepared folder"), e.getMessage());
  }
}
