package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelFolder;
import io.sparkdpo.testing.LocalClusterSpark;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.RewardObjective;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.TrainingFixtures;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The reward stage ({@code spark-dpo reward}) on {@code local-cluster[2,1,1536]}: the same barrier stage, ring
 * all-reduce and checkpoints as DPO, with a score head on a small causal LM and 2 x 16 synthetic pairs.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class RewardTrainingClusterTest {
  private static LocalClusterSpark cluster;
  private static String data;
  private static String model;

  @TempDir
  static Path tmp;

  @BeforeAll
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  static void startCluster() {
    model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 7);
    List<PreparedPair> a = TrainingFixtures.pairs("a", 16, TrainingFixtures.SMALL.vocabSize(), 21);
    List<PreparedPair> b = TrainingFixtures.pairs("b", 16, TrainingFixtures.SMALL.vocabSize(), 22);
    data = TrainingFixtures.writePrepared(tmp.resolve("data"), List.of(a, b),
        TrainingFixtures.pairs("e", 8, TrainingFixtures.SMALL.vocabSize(), 23), null);
    cluster = LocalClusterSpark.start(2, 1, 1536, Map.of());
  }

  @AfterAll
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  static void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  /**
   * 16 steps of a global batch of 4 pairs (2 from each shard), evaluation every 8, checkpoints every 4. Micro-batches
   * of 2 pairs, as the SFT cluster test runs them: one worker accumulates shard a's 2 pairs and shard b's, the two
   * workers each run one of them, so W=1 and W=2 compute the same micro-batches and differ only in how their
   * gradients are summed. With one micro-batch of 4 on one worker instead, the padding and batch shapes differ and
   * so does the rounding of each pair's gradient; a reward model amplifies that at the embedding rows of tokens that
   * occur in prompts only (docs/reward.md, "W = 2 against W = 1"; RewardMicroBatchBench: 5.0e-6 to 1.0e-5 between
   * micro-batch layouts in one JVM, no ring involved).
   */
  private static TrainingStage.Result train(String name, int workers) {
    JobConfig cfg = TrainingFixtures.config("model.path=" + model, "reward.learning_rate=0.002",
        "reward.warmup_steps=3", "reward.max_steps=16", "reward.logging_steps=1", "reward.eval_steps=8",
        "reward.save_steps=4", "reward.center_rewards_coefficient=0.01", "reward.workers=" + workers,
        "reward.per_device_train_batch_size=2", "reward.gradient_accumulation_steps=" + (2 / workers),
        "reward.output_dir=" + tmp.resolve(name));
    return new TrainingStage(cluster.session(), cfg, SessionSpec.Stage.REWARD)
        .withProgress(new SyntheticRunSpecs.CapturedProgress()).run(TrainingStage.Inputs.prepared(data));
  }

  private static Map<String, float[]> parameters(String modelDir) {
    Map<String, float[]> out = new LinkedHashMap<>();
    try (CausalLM m = CausalLM.load(modelDir, Storage.local(), CausalLM.device("cpu"))) {
      m.parameters().forEach((name, p) -> out.put(name, p.getArray().toFloatArray()));
    }
    return out;
  }

  @Test
  void twoWorkersInTwoExecutorsMatchOneWorkerAndExportALlamaForSequenceClassification() throws Exception {
    TrainingStage.Result one = train("reward-w1", 1);
    TrainingStage.Result two = train("reward-w2", 2);

    Set<Long> pids = two.outcome().reports().stream().map(WorkerReport::pid).collect(Collectors.toSet());
    assertEquals(2, pids.size(), "one rank per executor JVM: " + two.outcome().reports());
    assertFalse(pids.contains(ProcessHandle.current().pid()), "a rank ran in the driver");
    Map<Long, Double> lossOne = SyntheticRunSpecs.losses(one.runDir());
    Map<Long, Double> lossTwo = SyntheticRunSpecs.losses(two.runDir());
    assertEquals(16, lossOne.size());
    assertEquals(lossOne.keySet(), lossTwo.keySet());
    double lossGap = 0;
    for (long s = 1; s <= 16; s++) {
      assertEquals(lossOne.get(s), lossTwo.get(s), 1e-5, "loss at step " + s);
      lossGap = Math.max(lossGap, Math.abs(lossOne.get(s) - lossTwo.get(s)));
    }
    Map<String, float[]> p1 = parameters(one.modelDir());
    Map<String, float[]> p2 = parameters(two.modelDir());
    assertEquals(p1.keySet(), p2.keySet());
    double worst = 0;
    String worstAt = null;
    for (String name : p1.keySet()) {
      for (int i = 0; i < p1.get(name).length; i++) {
        double d = Math.abs(p1.get(name)[i] - p2.get(name)[i]);
        if (d > worst) {
          worst = d;
          worstAt = name + "[" + i + "] = " + p1.get(name)[i] + " vs " + p2.get(name)[i];
        }
      }
    }
    System.out.println("largest parameter difference at " + worstAt);
    System.out.printf("reward W=2 vs W=1 over 16 steps: largest loss difference %.2e, largest parameter difference "
        + "%.2e; eval %s%n", lossGap, worst, two.lastEval());
    assertTrue(worst <= 1e-5, "largest parameter difference " + worst);
    assertTrue(lossOne.get(16L) < lossOne.get(1L), lossOne.toString());

    for (String key : List.of(MetricNames.EVAL + MetricNames.LOSS, MetricNames.EVAL + RewardObjective.ACCURACY,
        MetricNames.EVAL + RewardObjective.MARGIN, MetricNames.EVAL + MetricNames.REWARDS_CHOSEN)) {
      assertEquals(((Number) one.lastEval().get(key)).doubleValue(), ((Number) two.lastEval().get(key)).doubleValue(),
          1e-5, key);
    }
    List<Map<String, Object>> records = MetricsLog.readAll(Storage.local(), two.runDir());
    assertTrue(records.stream().anyMatch(r -> r.containsKey(RewardObjective.ACCURACY)
        && r.containsKey(RewardObjective.MEAN_REWARD)), "train records carry TRL's reward metrics");

    // RUN/model is the layout transformers loads as LlamaForSequenceClassification.
    JsonNode config = Json.MAPPER.readTree(
        Storage.local().readBytes(Storage.join(two.modelDir(), ModelFolder.CONFIG)));
    assertEquals("LlamaForSequenceClassification", config.get("architectures").get(0).asText());
    assertEquals(1, config.get("num_labels").asInt());
    assertEquals(TrainingFixtures.SMALL.padTokenId(), config.get("pad_token_id").asInt());
    assertArrayEquals(new long[] {1, TrainingFixtures.SMALL.hiddenSize()},
        ModelFolder.headers(Storage.local(), two.modelDir()).get("score.weight").entry().shape());
    assertFalse(p2.containsKey("lm_head.weight"));
  }
}
