package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ValueHead;
import io.sparkdpo.testing.LocalClusterSpark;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.PpoRollout;
import io.sparkdpo.train.PpoTrainer;
import io.sparkdpo.train.SeededRng;
import io.sparkdpo.train.TrainingFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code spark-dpo ppo} on {@code local-cluster[2,1,1536]}: two replicas in two executor JVMs, each sampling half of
 * every rollout batch, against one replica doing the whole batch, with a small random Llama as policy and pi_SFT and
 * a reward model made from it (a seeded score head).
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class PpoTrainingClusterTest {
  private static final int UPDATES = 4;
  private static LocalClusterSpark cluster;
  private static String model;
  private static String rewardModel;
  private static String prompts;

  @TempDir
  static Path tmp;

  @BeforeAll
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  static void startCluster() throws Exception {
    model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 7);
    rewardModel = tmp.resolve("reward").toString();
    try (CausalLM rm = CausalLM.loadScorer(model, Storage.local(), CausalLM.device("cpu"), 3)) {
      rm.save(rewardModel, Storage.local(), DataType.FLOAT32);
    }
    SeededRng rng = new SeededRng(19);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 12; i++) {
      int[] ids = new int[3 + rng.nextInt(4)];
      for (int t = 0; t < ids.length; t++) {
        ids[t] = 2 + rng.nextInt(TrainingFixtures.SMALL.vocabSize() - 2);
      }
      sb.append(Json.LINES.writeValueAsString(new TextPrompts.Prompt(i, "prompt " + i, ids, "test", i + 1)))
          .append('\n');
    }
    Path file = tmp.resolve("prompts.jsonl");
    Files.writeString(file, sb.toString());
    prompts = file.toString();
    cluster = LocalClusterSpark.start(2, 1, 1536, Map.of());
  }

  @AfterAll
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  static void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  /** 4 updates of 8 responses, 2 mini-batches of 4, 2 epochs; the same global batch for W = 1 and W = 2. */
  private static TrainingStage.Result train(String name, int workers) {
    JobConfig cfg = TrainingFixtures.config("model.path=" + model, "ppo.prompts=['" + prompts + "']",
        "ppo.reward_model=" + rewardModel, "ppo.learning_rate=0.002", "ppo.max_steps=" + UPDATES,
        "ppo.per_device_train_batch_size=" + (4 / workers), "ppo.num_mini_batches=2", "ppo.num_ppo_epochs=2",
        "ppo.response_length=6", "ppo.temperature=1.0", "ppo.kl_coef=0.05", "ppo.save_steps=2",
        "ppo.workers=" + workers, "ppo.output_dir=" + tmp.resolve(name));
    return new PpoStage(cluster.session(), cfg).withProgress(new SyntheticRunSpecs.CapturedProgress()).run();
  }

  /** The exported policy's parameters and the value head's. */
  private static Map<String, float[]> parameters(TrainingStage.Result run) {
    Map<String, float[]> out = new LinkedHashMap<>();
    try (CausalLM m = CausalLM.load(run.modelDir(), Storage.local(), CausalLM.device("cpu"))) {
      m.parameters().forEach((name, p) -> out.put(name, p.getArray().toFloatArray()));
    }
    try (ValueHead h = ValueHead.load(PpoStage.valueHead(run.runDir()), Storage.local(),
        CausalLM.device("cpu"), TrainingFixtures.SMALL.hiddenSize())) {
      h.parameters().forEach((name, p) -> out.put(name, p.getArray().toFloatArray()));
    }
    return out;
  }

  private static Map<Long, Map<String, Object>> records(String runDir) {
    Map<Long, Map<String, Object>> out = new TreeMap<>();
    for (Map<String, Object> r : MetricsLog.readAll(Storage.local(), runDir)) {
      out.put(((Number) r.get(MetricNames.STEP)).longValue(), r);
    }
    return out;
  }

  @Test
  void twoReplicasInTwoExecutorsSampleAndTrainAsOneReplicaDoes() {
    TrainingStage.Result one = train("ppo-w1", 1);
    TrainingStage.Result two = train("ppo-w2", 2);

    Set<Long> pids = two.outcome().reports().stream().map(WorkerReport::pid).collect(Collectors.toSet());
    assertEquals(2, pids.size(), "one rank per executor JVM: " + two.outcome().reports());
    assertFalse(pids.contains(ProcessHandle.current().pid()), "a rank ran in the driver");

    Map<Long, Map<String, Object>> r1 = records(one.runDir());
    Map<Long, Map<String, Object>> r2 = records(two.runDir());
    assertEquals(UPDATES, r1.size());
    assertEquals(r1.keySet(), r2.keySet());
    double metricGap = 0;
    for (long s = 1; s <= UPDATES; s++) {
      for (String key : List.of(PpoRollout.KL, PpoRollout.SCORES, PpoRollout.RLHF_REWARD, PpoRollout.ENTROPY,
          "loss/policy_avg", "loss/value_avg", "policy/approxkl_avg", "policy/clipfrac_avg", "val/ratio",
          PpoTrainer.LR, PpoTrainer.EPISODE)) {
        double a = ((Number) r1.get(s).get(key)).doubleValue();
        double b = ((Number) r2.get(s).get(key)).doubleValue();
        assertEquals(a, b, 1e-5, key + " at update " + s);
        metricGap = Math.max(metricGap, Math.abs(a - b));
      }
    }
    Map<String, float[]> p1 = parameters(one);
    Map<String, float[]> p2 = parameters(two);
    assertEquals(p1.keySet(), p2.keySet());
    assertTrue(p1.containsKey(ValueHead.WEIGHT));
    double worst = TrainingFixtures.maxDifference(p1, p2);
    String worstAt = "";
    for (String name : p1.keySet()) {
      for (int i = 0; i < p1.get(name).length; i++) {
        if (Math.abs(p1.get(name)[i] - p2.get(name)[i]) == worst) {
          worstAt = name + "[" + i + "] = " + p1.get(name)[i] + " vs " + p2.get(name)[i];
        }
      }
    }
    Map<String, float[]> start = TrainingFixtures.parameters(model, 0);
    start.keySet().retainAll(p1.keySet());
    Map<String, float[]> trained = new LinkedHashMap<>(p1);
    trained.keySet().retainAll(start.keySet());
    double moved = TrainingFixtures.maxDifference(start, trained);
    System.out.printf("ppo W=2 vs W=1 over %d updates: largest metric difference %.2e, largest parameter difference "
        + "%.2e at %s (the policy moved %.2e from pi_SFT); scores %s -> %s%n", UPDATES, metricGap, worst, worstAt,
        moved, r1.get(1L).get(PpoRollout.SCORES), r1.get((long) UPDATES).get(PpoRollout.SCORES));
    assertTrue(worst <= 1e-5, "largest parameter difference " + worst);
    assertTrue(moved > 1e-3, "the policy trained: it moved " + moved);
    assertTrue(((Number) r1.get(2L).get(PpoRollout.KL)).doubleValue() != 0, "update 2 samples a policy that moved");
  }
}
