package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reward-model training through {@link TrainingSession} on a small causal LM given a score head, one replica. */
class RewardSessionTest {
  private static final Storage STORAGE = Storage.local();
  @TempDir
  static Path tmp;
  static String model;
  static String data;
  static List<PreparedPair> trainPairs;
  static List<PreparedPair> evalPairs;

  @BeforeAll
  static void inputs() {
    model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 5);
    trainPairs = TrainingFixtures.pairs("t", 24, TrainingFixtures.SMALL.vocabSize(), 1);
    evalPairs = TrainingFixtures.pairs("e", 8, TrainingFixtures.SMALL.vocabSize(), 2);
    data = TrainingFixtures.writePrepared(tmp.resolve("data"), List.of(trainPairs), evalPairs, null);
  }

  static JobConfig config(String... more) {
    List<String> o = new ArrayList<>(List.of("model.path=" + model, "reward.learning_rate=0.001",
        "reward.warmup_steps=2"));
    o.addAll(List.of(more));
    return TrainingFixtures.config(o.toArray(String[]::new));
  }

  static TrainingSession<?> open(JobConfig cfg, long totalSteps, Optional<Checkpoint> resume) {
    PreparedData d = PreparedData.open(STORAGE, data);
    SessionSpec spec = SessionSpec.reward(cfg.model(), cfg.reward(), totalSteps, d.trainRows());
    return TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"), d.trainFiles(), d.evalFiles(),
        GradientReducer.SINGLE, resume);
  }

  static Map<String, float[]> parameters(TrainingSession<?> s) {
    Map<String, float[]> out = new HashMap<>();
    s.policy().parameters().forEach((name, p) -> out.put(name, p.getArray().toFloatArray()));
    return out;
  }

  /** Each pair's (chosen, rejected) score, one pair per forward pass, without padding. */
  static double[][] scoresOf(CausalLM m, List<PreparedPair> pairs) {
    double[][] out = new double[pairs.size()][2];
    try (NDManager nd = NDManager.newBaseManager()) {
      for (int i = 0; i < pairs.size(); i++) {
        PreparedPair p = pairs.get(i);
        for (int k = 0; k < 2; k++) {
          int[] response = k == 0 ? p.chosenIds() : p.rejectedIds();
          int[] ids = new int[p.promptIds().length + response.length];
          System.arraycopy(p.promptIds(), 0, ids, 0, p.promptIds().length);
          System.arraycopy(response, 0, ids, p.promptIds().length, response.length);
          out[i][k] = m.scores(nd.create(ids, new Shape(1, ids.length)), false).getFloat(0);
        }
      }
    }
    return out;
  }

  @Test
  void evaluationMetricsAreTrlsMeansOverThePairsScoredOneByOne() {
    try (TrainingSession<?> s = open(config("reward.center_rewards_coefficient=0.1"), 5, Optional.empty())) {
      double[][] scores = scoresOf(s.policy(), evalPairs);
      double loss = 0;
      double correct = 0;
      double chosen = 0;
      double rejected = 0;
      for (double[] sc : scores) {
        double diff = sc[0] - sc[1];
        loss += Math.log1p(Math.exp(-diff)) + 0.1 * (sc[0] + sc[1]) * (sc[0] + sc[1]);
        correct += sc[0] > sc[1] ? 1 : 0;
        chosen += sc[0];
        rejected += sc[1];
      }
      int n = scores.length;
      TrainingSession.Outcome eval = s.evaluate();
      assertEquals(n, eval.items());
      Map<String, Double> m = eval.metrics();
      assertEquals(loss / n, m.get(MetricNames.LOSS), 1e-6);
      assertEquals(correct / n, m.get(RewardObjective.ACCURACY), 1e-12);
      assertEquals((chosen - rejected) / n, m.get(RewardObjective.MARGIN), 1e-6);
      assertEquals((chosen + rejected) / (2 * n), m.get(RewardObjective.MEAN_REWARD), 1e-6);
      assertEquals(chosen / n, m.get(MetricNames.REWARDS_CHOSEN), 1e-6);
      assertEquals(rejected / n, m.get(MetricNames.REWARDS_REJECTED), 1e-6);
    }
  }

  @Test
  void oneBatchOfEightEqualsFourAccumulatedMicroBatchesOfTwoAndTrainingRanksTheChosenResponsesHigher() {
    Map<String, float[]> whole;
    List<Double> lossWhole = new ArrayList<>();
    double accuracyBefore;
    double accuracyAfter;
    try (TrainingSession<?> s = open(config("reward.per_device_train_batch_size=8"), 12, Optional.empty())) {
      accuracyBefore = s.evaluate().metrics().get(RewardObjective.ACCURACY);
      for (int step = 1; step <= 12; step++) {
        lossWhole.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      whole = parameters(s);
      accuracyAfter = s.evaluate().metrics().get(RewardObjective.ACCURACY);
    }
    Map<String, float[]> accumulated;
    List<Double> lossAccumulated = new ArrayList<>();
    try (TrainingSession<?> s = open(config("reward.per_device_train_batch_size=2",
        "reward.gradient_accumulation_steps=4"), 12, Optional.empty())) {
      for (int step = 1; step <= 12; step++) {
        lossAccumulated.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      accumulated = parameters(s);
    }
    double diff = TrainingFixtures.maxDifference(whole, accumulated);
    assertTrue(diff < 1e-5, "max parameter difference " + diff);
    for (int i = 0; i < lossWhole.size(); i++) {
      assertEquals(lossWhole.get(i), lossAccumulated.get(i), 1e-6, "loss at step " + (i + 1));
    }
    // The fixture's chosen responses draw even token ids, the rejected odd ones: a reward model can tell them apart.
    System.out.printf("reward: eval accuracy %.3f -> %.3f, train loss %.4f -> %.4f%n", accuracyBefore, accuracyAfter,
        lossWhole.get(0), lossWhole.get(lossWhole.size() - 1));
    assertTrue(lossWhole.get(11) < lossWhole.get(0) - 0.1, lossWhole.toString());
    assertTrue(accuracyAfter >= 0.875, "eval accuracy after training " + accuracyAfter);
  }

  @Test
  void resumingInAFreshSessionFromACheckpointGivesTheBitsOfAStraightRun() {
    JobConfig cfg = config("reward.per_device_train_batch_size=4", "reward.center_rewards_coefficient=0.01");
    List<Map<String, Double>> straightMetrics = new ArrayList<>();
    Map<String, float[]> straight;
    try (TrainingSession<?> s = open(cfg, 8, Optional.empty())) {
      for (int step = 1; step <= 8; step++) {
        straightMetrics.add(s.step(step).metrics());
      }
      straight = parameters(s);
    }
    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("resume-run").toString(), null);
    List<Map<String, Double>> resumedMetrics = new ArrayList<>();
    try (TrainingSession<?> s = open(cfg, 8, Optional.empty())) {
      for (int step = 1; step <= 4; step++) {
        resumedMetrics.add(s.step(step).metrics());
      }
      store.save(4, s.checkpoint(4, s.cursor()));
    }
    Map<String, float[]> resumed;
    try (TrainingSession<?> s = open(cfg, 8, store.latestValid())) {
      assertEquals(4, s.stepsDone());
      assertTrue(s.policy().config().scoresSequences(), "the checkpoint holds the reward model");
      for (int step = 5; step <= 8; step++) {
        resumedMetrics.add(s.step(step).metrics());
      }
      resumed = parameters(s);
    }
    assertEquals(straight.keySet(), resumed.keySet());
    for (String name : straight.keySet()) {
      assertArrayEquals(straight.get(name), resumed.get(name), 0f, name + " differs after resuming");
    }
    for (int i = 0; i < 8; i++) {
      for (String key : List.of(MetricNames.LOSS, RewardObjective.ACCURACY, RewardObjective.MARGIN,
          MetricNames.GRAD_NORM)) {
        assertEquals(straightMetrics.get(i).get(key), resumedMetrics.get(i).get(key), 0.0, key + " at step " + (i + 1));
      }
    }
  }

  @Test
  void aLoraRewardModelTrainsAdaptersAndScoreHeadOnAFrozenBaseAndResumesBitForBit() {
    JobConfig cfg = config("reward.per_device_train_batch_size=4", "reward.learning_rate=0.01",
        "reward.peft.type=lora", "reward.peft.r=4", "reward.peft.target_modules=[q_proj, v_proj, up_proj]");
    Map<String, float[]> base;
    try (CausalLM m = CausalLM.loadScorer(model, STORAGE, CausalLM.device("cpu"), cfg.model().seed())) {
      base = new HashMap<>();
      m.parameters().forEach((name, p) -> base.put(name, p.getArray().toFloatArray()));
    }
    List<Double> losses = new ArrayList<>();
    Map<String, float[]> straight = new HashMap<>();
    try (TrainingSession<?> s = open(cfg, 8, Optional.empty())) {
      assertTrue(s.policy().hasAdapters());
      for (int step = 1; step <= 8; step++) {
        losses.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      s.policy().trainableParameters().forEach((name, p) -> straight.put(name, p.getArray().toFloatArray()));
      assertEquals(base.keySet(), parameters(s).keySet());
      parameters(s).forEach((name, values) -> assertArrayEquals(base.get(name), values, 0f, name + " is frozen"));
    }
    assertTrue(straight.containsKey("base_model.model.score.weight"), straight.keySet().toString());
    assertTrue(losses.get(7) < losses.get(0), losses.toString());

    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("lora-resume-run").toString(), null);
    try (TrainingSession<?> s = open(cfg, 8, Optional.empty())) {
      for (int step = 1; step <= 4; step++) {
        s.step(step);
      }
      store.save(4, s.checkpoint(4, s.cursor()));
    }
    assertTrue(java.nio.file.Files.exists(tmp.resolve("lora-resume-run/checkpoint-4/adapter_config.json")),
        "a LoRA checkpoint holds the PEFT adapter");
    try (TrainingSession<?> s = open(cfg, 8, store.latestValid())) {
      for (int step = 5; step <= 8; step++) {
        assertEquals(losses.get(step - 1), s.step(step).metrics().get(MetricNames.LOSS), 0.0, "loss at step " + step);
      }
      s.policy().trainableParameters().forEach((name, p) ->
          assertArrayEquals(straight.get(name), p.getArray().toFloatArray(), 0f, name + " differs after resuming"));
    }
  }
}
