package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GenerateJobTest {
  static final String TRAIN = "sample-data/corpus/moby-dick/train";
  static final String HELDOUT = "sample-data/corpus/moby-dick/heldout";
  static final String LENGTH_REWARD = "io.sparkdpo.eval.LengthPenaltyReward";

  @TempDir
  Path dir;

  static JobConfig config(long modelSeed, String... overrides) {
    List<String> all = new ArrayList<>(List.of("model.path=builtin:tiny", "model.seed=" + modelSeed,
        "generate.prompts=[" + TRAIN + "]", "generate.num_prompts=6", "generate.samples_per_prompt=4",
        "generate.max_new_tokens=10", "generate.prompts_per_batch=2", "evaluate.reward=" + LENGTH_REWARD));
    all.addAll(List.of(overrides));
    return ConfigLoader.load(null, all);
  }

  static GenerateJob.Result generate(JobConfig cfg, Path out) {
    return new GenerateJob(SharedSpark.get(), cfg).run(out.toString());
  }

  static List<JsonNode> lines(Path file) throws IOException {
    List<JsonNode> out = new ArrayList<>();
    for (String line : Files.readAllLines(file)) {
      out.add(Json.MAPPER.readTree(line));
    }
    return out;
  }

  @Test
  void samePairsAndSamplesWhateverThePartitioningAndTheModelLoadsOncePerJvm() throws IOException {
    long seed = ReferenceFixtures.freshSeed();
    long loads = ExecutorModels.loads();
    GenerateJob.Result one = generate(config(seed, "generate.partitions=1"), dir.resolve("one"));
    GenerateJob.Result three = generate(config(seed, "generate.partitions=3"), dir.resolve("three"));
    assertArrayEquals(Files.readAllBytes(dir.resolve("one/pairs.jsonl")), Files.readAllBytes(dir.resolve("three/pairs.jsonl")));
    SparkSession spark = SharedSpark.get();
    assertEquals(spark.read().parquet(dir.resolve("one/samples").toString()).orderBy("prompt_index", "sample")
        .collectAsList(), spark.read().parquet(dir.resolve("three/samples").toString())
        .orderBy("prompt_index", "sample").collectAsList());
    // Three tasks in one JVM (local[2]): the first run loaded the model, the second found it cached.
    assertEquals(3, three.manifest().executors().tasks());
    assertEquals(1, one.manifest().executors().modelLoads());
    assertEquals(0, three.manifest().executors().modelLoads());
    assertEquals(loads + 1, ExecutorModels.loads());
    // Another seed samples other continuations.
    generate(config(seed, "generate.seed=8"), dir.resolve("other"));
    assertFalse(Files.readString(dir.resolve("one/pairs.jsonl")).equals(Files.readString(dir.resolve("other/pairs.jsonl"))));
  }

  @Test
  void chosenIsTheBestAndRejectedTheWorstContinuationByTheReward() throws IOException {
    GenerateJob.Result r = generate(config(ReferenceFixtures.freshSeed()), dir.resolve("out"));
    GenerateManifest.Counts c = r.manifest().counts();
    assertEquals(6, c.prompts());
    assertEquals(24, c.samples());
    assertEquals(c.prompts(), c.pairs() + c.droppedTies() + c.droppedIdenticalTexts() + c.droppedEmpty());
    assertTrue(c.pairs() >= 4, "the length reward separates random continuations: " + c);
    assertEquals("length-penalty", r.manifest().reward().name());

    Map<String, List<Row>> byPrompt = new HashMap<>();
    for (Row row : SharedSpark.get().read().parquet(dir.resolve("out/samples").toString()).collectAsList()) {
      byPrompt.computeIfAbsent(row.getString(row.fieldIndex("prompt")), k -> new ArrayList<>()).add(row);
    }
    List<JsonNode> pairs = lines(dir.resolve("out/pairs.jsonl"));
    assertEquals(c.pairs(), pairs.size());
    for (JsonNode pair : pairs) {
      List<Row> samples = byPrompt.get(pair.get("prompt").asText());
      assertEquals(4, samples.size());
      double best = Double.NEGATIVE_INFINITY;
      double worst = Double.POSITIVE_INFINITY;
      Map<String, Double> reward = new HashMap<>();
      for (Row s : samples) {
        String text = s.getString(s.fieldIndex("continuation"));
        double v = s.getDouble(s.fieldIndex("reward"));
        assertEquals(-text.length(), v, 0.0, "the executors' reward");
        if (!text.isBlank()) {
          best = Math.max(best, v);
          worst = Math.min(worst, v);
          reward.put(text, v);
        }
      }
      assertEquals(best, reward.get(pair.get("chosen").asText()));
      assertEquals(worst, reward.get(pair.get("rejected").asText()));
      assertTrue(best > worst);
    }
  }

  @Test
  void aRewardThatPrefersNothingDropsEveryPromptAsATieAndCountsIt() throws IOException {
    GenerateJob.Result r = generate(config(ReferenceFixtures.freshSeed(),
        "evaluate.reward=io.sparkdpo.inference.ConstantReward", "generate.write_samples=false"), dir.resolve("out"));
    GenerateManifest.Counts c = r.manifest().counts();
    assertEquals(0, c.pairs());
    assertEquals(6 - c.droppedEmpty(), c.droppedTies());
    assertEquals("", Files.readString(dir.resolve("out/pairs.jsonl")));
    assertFalse(Files.exists(dir.resolve("out/samples")));
  }

  @Test
  void pairsAreReadByPrepareAsTrlRowsWithNothingQuarantined() {
    GenerateJob.Result r = generate(config(ReferenceFixtures.freshSeed()), dir.resolve("out"));
    JobConfig cfg = ConfigLoader.load(null, List.of("prepare.format=trl", "prepare.tokenizer=builtin",
        "prepare.eval_fraction=0.0"));
    PrepareJob.Result p = new PrepareJob(SharedSpark.get(), cfg, 1).run(
        List.of(dir.resolve("out/pairs.jsonl").toString()), dir.resolve("prepared").toString());
    assertEquals(r.manifest().counts().pairs(), p.manifest().counts().read());
    assertEquals(r.manifest().counts().pairs(), p.manifest().counts().kept());
    assertEquals(0, p.manifest().counts().quarantined());
  }

  @Test
  void aPlainTemplateKeepsPromptAndContinuationAsOneText() throws IOException {
    generate(config(ReferenceFixtures.freshSeed()), dir.resolve("out"));
    JobConfig cfg = ConfigLoader.load(null, List.of("prepare.format=trl", "prepare.tokenizer=builtin",
        "prepare.eval_fraction=0.0", "prepare.add_eos=false", "prepare.template=plain"));
    new PrepareJob(SharedSpark.get(), cfg, 1).run(List.of(dir.resolve("out/pairs.jsonl").toString()),
        dir.resolve("prepared").toString());
    Map<String, JsonNode> byPrompt = new HashMap<>();
    for (JsonNode pair : lines(dir.resolve("out/pairs.jsonl"))) {
      byPrompt.put(pair.get("prompt").asText(), pair);
    }
    List<PreparedPair> prepared = ReferenceFixtures.pairs(dir.resolve("prepared"));
    assertEquals(byPrompt.size(), prepared.size());
    for (PreparedPair p : prepared) {
      JsonNode pair = byPrompt.get(p.promptText());
      assertEquals(pair.get("chosen").asText(), p.chosenText());
      assertEquals(pair.get("rejected").asText(), p.rejectedText());
    }
  }

  @Test
  void evalPromptsComeFromHeldOutTextAndNeverRepeatATrainingPrompt() throws IOException {
    GenerateJob.Result r = generate(config(ReferenceFixtures.freshSeed(), "generate.eval_prompts=[" + HELDOUT + "]",
        "evaluate.num_prompts=5", "generate.write_samples=false"), dir.resolve("out"));
    Storage storage = Storage.local();
    List<TextPrompts.Prompt> train = GenerateJob.readPrompts(storage, dir.resolve("out/prompts.jsonl").toString());
    List<TextPrompts.Prompt> eval = GenerateJob.readPrompts(storage, dir.resolve("out/eval_prompts.jsonl").toString());
    assertEquals(6, train.size());
    assertEquals(5, eval.size());
    assertEquals(5, r.manifest().counts().evalPrompts());
    Set<String> texts = new HashSet<>();
    train.forEach(p -> texts.add(p.text()));
    for (TextPrompts.Prompt p : eval) {
      assertFalse(texts.contains(p.text()), p.text());
      assertTrue(p.source().contains("/heldout/"), p.source());
      int words = p.text().split("\\s+").length;
      assertTrue(words >= 2 && words <= 8, p.text());
    }
    train.forEach(p -> assertTrue(p.source().contains("/train/"), p.source()));

    IllegalArgumentException overlap = assertThrows(IllegalArgumentException.class, () -> generate(
        config(1, "generate.eval_prompts=[" + TRAIN + "/chapter-001.txt]"), dir.resolve("bad")));
    assertTrue(overlap.getMessage().contains("is also training prompt text"), overlap.getMessage());
  }

  @Test
  void rerunWithTheSameInputsIsANoOpAndOtherSettingsGenerateAgain() throws IOException {
    long seed = ReferenceFixtures.freshSeed();
    GenerateJob.Result first = generate(config(seed), dir.resolve("out"));
    assertFalse(first.upToDate());
    byte[] manifest = Files.readAllBytes(dir.resolve("out/manifest.json"));
    GenerateJob.Result again = generate(config(seed, "generate.partitions=2"), dir.resolve("out"));
    assertTrue(again.upToDate());
    assertArrayEquals(manifest, Files.readAllBytes(dir.resolve("out/manifest.json")));
    assertFalse(generate(config(seed, "generate.samples_per_prompt=3"), dir.resolve("out")).upToDate());
    assertEquals(18, GenerateManifest.read(Storage.local(), dir.resolve("out").toString()).counts().samples());
  }
}
