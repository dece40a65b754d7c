package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The RLHF-vs-DPO pipeline at tiny sizes: the reward stage trains on the prepared pairs, PPO optimises that reward
 * model and best-of-n selects by it, and evaluate puts DPO, PPO and best-of-n on one frontier with a verdict; a
 * second run skips every stage.
 */
class PipelineRlhfTest {
  @TempDir
  Path dir;

  @Test
  void runsRewardPpoAndBestOfNThenEvaluatesThemOnOneFrontier() throws IOException {
    Path root = dir.resolve("rlhf");
    List<String> a = new ArrayList<>(PipelineTest.args(root));
    for (String s : List.of("pipeline.betas=[0.1]", "pipeline.kl_coefs=[0.1]", "pipeline.best_of_n=[1, 2]",
        "pipeline.stages=[sft, generate, prepare, reference, reward, train, ppo, best-of-n, evaluate, export]",
        "reward.max_steps=2", "reward.per_device_train_batch_size=4", "reward.learning_rate=1.0e-3",
        "ppo.max_steps=2", "ppo.per_device_train_batch_size=2", "ppo.response_length=4",
        "ppo.local_rollout_forward_batch_size=4", "ppo.learning_rate=1.0e-4")) {
      a.add("--set");
      a.add(s);
    }
    PrepareCommandTest.Run first = PrepareCommandTest.run(a.toArray(String[]::new));
    assertEquals(0, first.exit(), first.err());
    for (String stage : List.of("reward", "train β=0.1", "ppo kl_coef=0.1", "best-of-n", "evaluate", "export")) {
      assertTrue(first.out().contains("pipeline: " + stage + " done in "), stage + " ran:\n" + first.out());
    }
    String rewardModel = root.resolve("reward/model").toString();
    assertEquals("LlamaForSequenceClassification", json(root.resolve("reward/model/config.json"))
        .path("architectures").get(0).asText());
    JsonNode ppo = json(root.resolve("ppo-kl-0.1/run.json")).path("spec");
    assertEquals("reward_model", ppo.path("reward_kind").asText());
    assertEquals(rewardModel, ppo.path("ppo").path("rewardModel").asText());
    assertEquals(0.1, ppo.path("ppo").path("klCoef").asDouble(), 0.0);
    assertEquals(root.resolve("sft/model").toString(), ppo.path("model").path("path").asText());
    JsonNode bon = json(root.resolve("best-of-n/best_of_n.json"));
    assertEquals("reward_model", bon.path("selector_kind").asText());
    assertEquals(6, bon.path("prompts").asInt(), "evaluate's held-out prompts");

    JsonNode frontier = json(root.resolve("evaluation/metrics.json")).path("frontier");
    List<String> methods = new ArrayList<>();
    frontier.path("points").forEach(p -> methods.add(p.path("method").asText() + " " + p.path("series").asText()));
    assertEquals(List.of("sft π_SFT", "dpo DPO β=0.1", "ppo PPO kl_coef=0.1", "best-of-n best-of-n (reward model)",
        "best-of-n best-of-n (reward model)"), methods);
    assertEquals(1, frontier.path("comparisons").size());
    assertTrue(first.out().contains("frontier: " + frontier.path("verdict").asText()), first.out());
    assertTrue(Files.size(root.resolve("evaluation/reward-vs-kl.png")) > 1000);
    assertTrue(first.out().contains("exported the policy of " + root.resolve("dpo-beta-0.1")), first.out());

    PrepareCommandTest.Run second = PrepareCommandTest.run(a.toArray(String[]::new));
    assertEquals(0, second.exit(), second.err());
    assertTrue(second.out().contains("(10 skipped as up to date)"), second.out());
  }

  private static JsonNode json(Path file) throws IOException {
    return Json.MAPPER.readTree(Files.readAllBytes(file));
  }
}
