package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.ModelFolder;
import io.sparkdpo.model.ValueHead;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.PpoRollout;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code spark-dpo ppo} from the command line on the built-in tiny model with the oracle reward, W = 1. */
class PpoCommandTest {
  @TempDir
  Path dir;

  /** Eight prompts as generate writes them, tokenized with the built-in tokenizer. */
  private Path prompts() throws IOException {
    TextTokenizer tokenizer = TextTokenizer.load("builtin", Storage.local());
    String[] texts = {"The whale was", "It was a good day and", "Call me", "The sea was calm, the sky",
        "I loved the", "He hated every", "The captain said", "Nothing is as wonderful as"};
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < texts.length; i++) {
      sb.append(Json.LINES.writeValueAsString(new TextPrompts.Prompt(i, texts[i], tokenizer.encode(texts[i]),
          "test", i + 1))).append('\n');
    }
    Path file = dir.resolve("prompts.jsonl");
    Files.writeString(file, sb.toString());
    return file;
  }

  private static List<String> args(Path prompts, Path out) {
    return new ArrayList<>(List.of("ppo", "--prompts", prompts.toString(), "--model", "builtin:tiny", "--reward",
        "afinn", "--kl-coef", "0.1", "--output", out.toString(), "--max-steps", "3",
        "--set", "ppo.per_device_train_batch_size=2", "--set", "ppo.num_mini_batches=2",
        "--set", "ppo.num_ppo_epochs=2", "--set", "ppo.response_length=6", "--set", "ppo.save_steps=1",
        "--set", "ppo.learning_rate=1.0e-4", "--set", "spark.master=local[2]"));
  }

  /** metrics.jsonl without the wall-clock figures, which no two runs share. */
  private static List<Map<String, Object>> metricsWithoutTimings(Path runDir) throws IOException {
    List<Map<String, Object>> out = new ArrayList<>();
    for (String line : Files.readAllLines(runDir.resolve(MetricsLog.CONSOLIDATED))) {
      Map<String, Object> r = Json.LINES.readValue(line, new TypeReference<LinkedHashMap<String, Object>>() {});
      r.keySet().removeIf(k -> k.startsWith("perf/") || k.equals("time") || k.equals("timestamp"));
      out.add(r);
    }
    return out;
  }

  private static void deleteTree(Path p) throws IOException {
    try (Stream<Path> walk = Files.walk(p)) {
      for (Path f : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(f);
      }
    }
  }

  @Test
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void ppoWritesThePolicyAndValueHeadAndAResumedRunEndsWithTheBitsOfAStraightRun() throws Exception {
    Path prompts = prompts();
    Path straight = dir.resolve("straight");
    PrepareCommandTest.Run r = PrepareCommandTest.run(args(prompts, straight).toArray(String[]::new));
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.out().contains("ppo: 3 steps done in 1 attempt(s); model in "), r.out());

    // RUN/model is a causal LM in HF layout without the value head, which sits next to it.
    JsonNode config = Json.MAPPER.readTree(straight.resolve("model/config.json").toFile());
    assertEquals("LlamaForCausalLM", config.get("architectures").get(0).asText());
    assertTrue(Files.exists(straight.resolve("model/tokenizer.json")), "the tokenizer goes with the policy");
    assertFalse(ModelFolder.headers(Storage.local(), straight.resolve("model").toString())
        .containsKey(ValueHead.WEIGHT), "the value head is not part of the policy");
    assertTrue(Files.size(straight.resolve("value_head.safetensors")) > 0);
    JsonNode run = Json.MAPPER.readTree(straight.resolve("run.json").toFile());
    assertEquals("oracle", run.get("spec").get("reward_kind").asText());
    assertTrue(run.get("spec").get("reward_name").asText().startsWith("oracle:afinn"), run.toString());
    // TRL's batch: per_device_train_batch_size 2 x gradient_accumulation_steps 1 x num_mini_batches 2 x W 1.
    assertEquals(4, run.get("spec").get("rollout_batch").asInt());

    List<Map<String, Object>> metrics = metricsWithoutTimings(straight);
    assertEquals(3, metrics.size(), metrics.toString());
    for (Map<String, Object> m : metrics) {
      for (String key : List.of(PpoRollout.KL, PpoRollout.SCORES, PpoRollout.RLHF_REWARD, "loss/policy_avg",
          "loss/value_avg", "policy/clipfrac_avg", "val/ratio", "lr", "episode")) {
        assertTrue(m.get(key) instanceof Number, key + " in " + m);
      }
    }
    assertEquals(4.0, ((Number) metrics.get(0).get("episode")).doubleValue());
    assertEquals(12.0, ((Number) metrics.get(2).get("episode")).doubleValue());
    // The first rollout samples pi_SFT itself: its KL is exactly 0 (policy and reference hold the same weights).
    assertEquals(0.0, ((Number) metrics.get(0).get(PpoRollout.KL)).doubleValue(), 1e-6);

    // A run that lost its last checkpoint (a crash between update 2's checkpoint and update 3's) resumes from
    // checkpoint-2 and ends with the same bits and the same metrics.
    Path resumed = dir.resolve("resumed");
    assertEquals(0, PrepareCommandTest.run(args(prompts, resumed).toArray(String[]::new)).exit());
    CheckpointStore store = new CheckpointStore(Storage.local(), resumed.toString(), null);
    assertEquals(List.of(1L, 2L, 3L), store.committedSteps());
    deleteTree(resumed.resolve("checkpoint-3"));
    deleteTree(resumed.resolve("model"));
    Files.delete(resumed.resolve("value_head.safetensors"));
    PrepareCommandTest.Run again = PrepareCommandTest.run(args(prompts, resumed).toArray(String[]::new));
    assertEquals(0, again.exit(), again.err());
    assertTrue(again.out().contains("ppo: 3 steps done in 1 attempt(s)"), again.out());
    assertArrayEquals(Files.readAllBytes(straight.resolve("model/model.safetensors")),
        Files.readAllBytes(resumed.resolve("model/model.safetensors")), "bit-identical policy");
    assertArrayEquals(Files.readAllBytes(straight.resolve("value_head.safetensors")),
        Files.readAllBytes(resumed.resolve("value_head.safetensors")), "bit-identical value head");
    assertEquals(metrics, metricsWithoutTimings(resumed), "metrics.jsonl, timings aside");

    PrepareCommandTest.Run upToDate = PrepareCommandTest.run(args(prompts, straight).toArray(String[]::new));
    assertEquals(0, upToDate.exit(), upToDate.err());
    assertTrue(upToDate.out().contains("is up to date"), upToDate.out());
    List<String> changed = args(prompts, straight);
    changed.addAll(List.of("--set", "ppo.vf_coef=0.2"));
    PrepareCommandTest.Run refused = PrepareCommandTest.run(changed.toArray(String[]::new));
    assertEquals(1, refused.exit());
    assertTrue(refused.err().contains("holds a run with other settings (spec.ppo.vfCoef: 0.1 -> 0.2)"),
        refused.err());
  }

  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void badSettingsAndBadPromptsAreRefusedBeforeAnyOutput() throws Exception {
    Path project = Path.of(System.getProperty("project.basedir", "."));
    JobConfig conf = ConfigLoader.load(project.resolve("conf/ppo.yaml"), List.of());
    assertEquals(16, conf.ppo().rolloutBatch(), "conf/ppo.yaml: 8 x 1 x 2 mini-batches x 1 worker");
    Path prompts = prompts();
    List<String> k2 = args(prompts, dir.resolve("never"));
    k2.addAll(List.of("--set", "ppo.kl_estimator=k2", "--set", "ppo.lam=1.5"));
    PrepareCommandTest.Run r = PrepareCommandTest.run(k2.toArray(String[]::new));
    assertEquals(2, r.exit(), "a bad setting is a usage error");
    assertTrue(r.err().contains("ppo.kl_estimator: must be one of [k1, k3] (got k2)"), r.err());
    assertTrue(r.err().contains("ppo.lam: must be in [0.0, 1.0] (got 1.5)"), r.err());

    Path bad = dir.resolve("bad.jsonl");
    Files.writeString(bad, Files.readAllLines(prompts).get(0) + "\n{\"index\":1,\"text\":\"x\",\"ids\":[5, 99999]}\n",
        StandardCharsets.UTF_8);
    PrepareCommandTest.Run ids = PrepareCommandTest.run(args(bad, dir.resolve("never")).toArray(String[]::new));
    assertEquals(1, ids.exit());
    assertTrue(ids.err().contains(bad + ", line 2: field ids holds token 99999, outside the policy's vocabulary of "
        + "4096"), ids.err());

    List<String> notRm = args(prompts, dir.resolve("never"));
    notRm.addAll(List.of("--reward-model", "builtin:tiny"));
    PrepareCommandTest.Run rm = PrepareCommandTest.run(notRm.toArray(String[]::new));
    assertEquals(1, rm.exit());
    assertTrue(rm.err().contains("ppo.reward_model builtin:tiny is a LlamaForCausalLM, not a reward model"), rm.err());
    assertFalse(Files.exists(dir.resolve("never")));
  }
}
