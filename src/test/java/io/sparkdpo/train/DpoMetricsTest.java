package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.TrainSettings.LossType;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.NoGrad;
import io.sparkdpo.model.SequenceLogProbs;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The DPO metrics TRL 0.22.2 logs beyond the loss's: {@code logits/chosen} and {@code logits/rejected} (the policy's
 * logits averaged over the vocabulary and a micro-batch's response positions), rewards of {@code reference_free}
 * against the reference as TRL reports them, and the {@code num_tokens} a step runs through the policy.
 */
class DpoMetricsTest {
  private static final Storage STORAGE = Storage.local();
  @TempDir
  static Path tmp;
  static String policyPath;
  static String referencePath;
  static List<PreparedPair> pairs;

  @BeforeAll
  static void inputs() {
    policyPath = TrainingFixtures.writeModel(tmp.resolve("policy"), TrainingFixtures.SMALL, 5);
    referencePath = TrainingFixtures.writeModel(tmp.resolve("reference"), TrainingFixtures.SMALL, 6);
    pairs = TrainingFixtures.pairs("m", 7, TrainingFixtures.SMALL.vocabSize(), 3);
  }

  private static CausalLM load(String path) {
    return CausalLM.load(path, STORAGE, CausalLM.device("cpu"), 0, ai.djl.ndarray.types.DataType.FLOAT32);
  }

  /**
   * The mean of the full [L, V] logits of prompt + response over the rows that predict a response token, summed
   * (not averaged) over those rows: from the model's plain forward pass, not the log-prob path.
   */
  private static double[] logitRowSum(CausalLM model, NDManager m, int[] prompt, int[] response) {
    int[] ids = new int[prompt.length + response.length];
    System.arraycopy(prompt, 0, ids, 0, prompt.length);
    System.arraycopy(response, 0, ids, prompt.length, response.length);
    try (NoGrad ignored = NoGrad.enter(); NDManager scope = m.newSubManager()) {
      NDArray logits = model.logits(scope.create(ids, new Shape(1, ids.length)), false);
      NDArray rows = logits.get(new NDIndex("0, {}:{}", prompt.length - 1, ids.length - 1));
      float[] values = rows.toFloatArray();
      double sum = 0;
      for (float v : values) {
        sum += v;
      }
      long vocab = rows.getShape().get(1);
      return new double[] {sum / vocab, response.length};
    }
  }

  /** TRL: per micro-batch the mean over all its response positions; micro-batches then averaged (by pairs here). */
  private static double[] expectedMeanLogits(CausalLM policy, NDManager m, List<List<PreparedPair>> microBatches) {
    double chosen = 0;
    double rejected = 0;
    int n = 0;
    for (List<PreparedPair> mb : microBatches) {
      double cs = 0;
      double cr = 0;
      double rs = 0;
      double rr = 0;
      for (PreparedPair p : mb) {
        double[] c = logitRowSum(policy, m, p.promptIds(), p.chosenIds());
        double[] r = logitRowSum(policy, m, p.promptIds(), p.rejectedIds());
        cs += c[0];
        cr += c[1];
        rs += r[0];
        rr += r[1];
      }
      chosen += mb.size() * cs / cr;
      rejected += mb.size() * rs / rr;
      n += mb.size();
    }
    return new double[] {chosen / n, rejected / n};
  }

  @Test
  void meanLogitsAreTokenWeightedWithinAMicroBatchAndPairWeightedAcrossThem() {
    List<List<PreparedPair>> microBatches = List.of(pairs.subList(0, 3), pairs.subList(3, 6), pairs.subList(6, 7));
    try (CausalLM policy = load(policyPath); NDManager m = NDManager.newBaseManager();
        DpoObjective dpo = new DpoObjective(policy, load(referencePath), new DpoLoss(LossType.SIGMOID, 0.1, 0))) {
      double[] stats = dpo.emptyStats();
      for (List<PreparedPair> mb : microBatches) {
        try (NDManager scope = m.newSubManager()) {
          double[] s = dpo.evaluate(scope, mb);
          for (int i = 0; i < stats.length; i++) {
            stats[i] += s[i];
          }
        }
      }
      Map<String, Double> metrics = dpo.metrics(stats);
      double[] expected = expectedMeanLogits(policy, m, microBatches);
      assertEquals(expected[0], metrics.get(MetricNames.LOGITS_CHOSEN), 1e-5 * Math.max(1, Math.abs(expected[0])));
      assertEquals(expected[1], metrics.get(MetricNames.LOGITS_REJECTED), 1e-5 * Math.max(1, Math.abs(expected[1])));
      // A mean of per-pair means would be another number: the weighting is what is pinned here.
      double perPair = 0;
      for (PreparedPair p : pairs) {
        double[] c = logitRowSum(policy, m, p.promptIds(), p.chosenIds());
        perPair += c[0] / c[1];
      }
      perPair /= pairs.size();
      assertTrue(Math.abs(perPair - expected[0]) > 1e-4, perPair + " vs " + expected[0]);
      // Training passes report the same statistic as evaluation passes.
      try (NDManager scope = m.newSubManager();
          ai.djl.training.GradientCollector ignored = ai.djl.engine.Engine.getEngine("PyTorch")
              .newGradientCollector()) {
        Objective.Forward f = dpo.forward(scope, microBatches.get(0));
        double[] one = expectedMeanLogits(policy, m, List.of(microBatches.get(0)));
        Map<String, Double> trained = dpo.metrics(f.stats());
        assertEquals(one[0], trained.get(MetricNames.LOGITS_CHOSEN), 1e-5 * Math.max(1, Math.abs(one[0])));
      }
    }
  }

  @Test
  void referenceFreeRewardsAreMeasuredAgainstTheReferenceAsTrlReportsThem() {
    double beta = 0.5;
    List<PreparedPair> batch = pairs.subList(0, 4);
    try (CausalLM policy = load(policyPath); CausalLM reference = load(referencePath);
        NDManager m = NDManager.newBaseManager()) {
      List<int[]> prompts = batch.stream().map(PreparedPair::promptIds).toList();
      SequenceLogProbs.Pairs pi = new SequenceLogProbs(policy).computePairs(m, prompts,
          batch.stream().map(PreparedPair::chosenIds).toList(), batch.stream().map(PreparedPair::rejectedIds).toList(),
          false);
      SequenceLogProbs.Pairs ref = new SequenceLogProbs(reference).computePairs(m, prompts,
          batch.stream().map(PreparedPair::chosenIds).toList(), batch.stream().map(PreparedPair::rejectedIds).toList(),
          false);
      double[] pc = pi.chosen().sums();
      double[] pr = pi.rejected().sums();
      double[] rc = ref.chosen().sums();
      double[] rr = ref.rejected().sums();
      double chosenReward = 0;
      double rejectedReward = 0;
      double loss = 0;
      for (int i = 0; i < pc.length; i++) {
        chosenReward += beta * (pc[i] - rc[i]);
        rejectedReward += beta * (pr[i] - rr[i]);
        loss += Math.log1p(Math.exp(-beta * (pc[i] - pr[i]))); // the reference's log-ratio taken as 0
      }
      int n = pc.length;

      try (DpoObjective dpo = new DpoObjective(load(policyPath), load(referencePath),
          new DpoLoss(LossType.REFERENCE_FREE, beta, 0)); NDManager scope = m.newSubManager()) {
        Map<String, Double> metrics = dpo.metrics(dpo.evaluate(scope, batch));
        assertEquals(loss / n, metrics.get(MetricNames.LOSS), 1e-5);
        assertEquals(chosenReward / n, metrics.get(MetricNames.REWARDS_CHOSEN), 1e-4);
        assertEquals(rejectedReward / n, metrics.get(MetricNames.REWARDS_REJECTED), 1e-4);
        double policyOnly = 0;
        for (double v : pc) {
          policyOnly += beta * v;
        }
        assertTrue(Math.abs(policyOnly / n - metrics.get(MetricNames.REWARDS_CHOSEN)) > 1.0,
            "not beta log pi: " + metrics);
      }
    }
  }

  @Test
  void aStepReportsTheTokensItRanThroughThePolicy() {
    String data = TrainingFixtures.writePrepared(tmp.resolve("data"), List.of(pairs.subList(0, 6)),
        pairs.subList(6, 7), null);
    JobConfig cfg = TrainingFixtures.config("model.path=" + policyPath, "train.reference_mode=in_loop",
        "train.per_device_train_batch_size=2", "train.loss_type=reference_free");
    PreparedData d = PreparedData.open(STORAGE, data);
    SessionSpec spec = SessionSpec.dpo(cfg.model(), cfg.train(), cfg.model().path(), 3, d.trainRows());
    Map<String, PreparedPair> byId = new HashMap<>();
    pairs.forEach(p -> byId.put(p.pairId(), p));
    try (TrainingSession<?> s = TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"), d.trainFiles(),
        d.evalFiles(), GradientReducer.SINGLE, Optional.empty())) {
      TrainingSession.Outcome o = s.step(1);
      long tokens = 0;
      for (String id : o.exampleIds()) {
        PreparedPair p = byId.get(id);
        tokens += 2L * p.promptIds().length + p.chosenIds().length + p.rejectedIds().length;
      }
      assertEquals(tokens, o.metrics().get(MetricNames.NUM_TOKENS), 0);
      double rate = tokens / o.metrics().get(TrainingSession.STEP_SECONDS);
      assertEquals(rate, o.metrics().get(MetricNames.TOKENS_PER_SECOND), 1e-9 * rate);
      // reference_free runs with its in-loop reference (the policy's start, so every reward is 0 at step 1).
      assertEquals(0.0, o.metrics().get(MetricNames.REWARDS_CHOSEN), 1e-6, o.metrics().toString());
    }
  }
}
