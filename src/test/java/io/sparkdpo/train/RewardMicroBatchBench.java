package io.sparkdpo.train;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Why a reward model's W=2 run is not within 1e-5 of W=1 when the workers' micro-batches differ from W=1's
 * (docs/reward.md, "W = 2 against W = 1"). One JVM, no ring: the run of RewardTrainingClusterTest (its model, its
 * 32 pairs, lr 0.002, centering 0.01, 16 steps of 4 pairs) with the 4 pairs of a step in one micro-batch, in two
 * of 2 and in four of 1. Prints the largest parameter differences, the embedding rows they sit in and whether those
 * tokens ever occur in a response, and the step-1 gradient of the worst row in both layouts.
 *
 * <pre>mvn -o -B -q -Pbench test -Dtest=RewardMicroBatchBench</pre>
 */
@Tag("bench")
public class RewardMicroBatchBench {
  @TempDir
  static Path tmp;

  @Test
  void microBatchLayoutMovesOnlyEmbeddingRowsOfPromptOnlyTokens() throws Exception {
    String model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 7);
    List<PreparedPair> all = new ArrayList<>(TrainingFixtures.pairs("a", 16, TrainingFixtures.SMALL.vocabSize(), 21));
    all.addAll(TrainingFixtures.pairs("b", 16, TrainingFixtures.SMALL.vocabSize(), 22));
    String data = TrainingFixtures.writePrepared(tmp.resolve("data"), List.of(all),
        TrainingFixtures.pairs("e", 8, TrainingFixtures.SMALL.vocabSize(), 23), null);
    Set<Integer> inResponses = new HashSet<>();
    for (PreparedPair p : all) {
      Arrays.stream(p.chosenIds()).forEach(inResponses::add);
      Arrays.stream(p.rejectedIds()).forEach(inResponses::add);
    }
    Map<String, float[]> four = run(model, data, 4, 1);
    Map<String, float[]> twoByTwo = run(model, data, 2, 2);
    Map<String, float[]> fourByOne = run(model, data, 1, 4);
    report("one micro-batch of 4 vs 2 x 2", four, twoByTwo, inResponses);
    report("one micro-batch of 4 vs 4 x 1", four, fourByOne, inResponses);
    report("2 x 2 vs 4 x 1", twoByTwo, fourByOne, inResponses);
    stepOneGradient(model, all.subList(0, 4));
  }

  /**
   * The embedding gradient of the first 4 pairs in one micro-batch and in two of 2: the element that differs most
   * relative to its own size, against the difference relative to its row's norm.
   */
  private static void stepOneGradient(String model, List<PreparedPair> pairs) {
    try (CausalLM m = CausalLM.loadScorer(model, Storage.local(), CausalLM.device("cpu"), 0)) {
      RewardObjective objective = new RewardObjective(m, new RewardLoss(0.01));
      float[] one = embeddingGradient(m, objective, List.of(pairs));
      float[] two = embeddingGradient(m, objective, List.of(pairs.subList(0, 2), pairs.subList(2, 4)));
      int worst = 0;
      double worstRelative = 0;
      for (int i = 0; i < one.length; i++) {
        double relative = one[i] == 0 ? 0 : Math.abs(one[i] - two[i]) / Math.abs(one[i]);
        if (relative > worstRelative) {
          worstRelative = relative;
          worst = i;
        }
      }
      int hidden = TrainingFixtures.SMALL.hiddenSize();
      int row = worst / hidden;
      double norm = 0;
      double rowDiff = 0;
      for (int j = row * hidden; j < (row + 1) * hidden; j++) {
        norm += (double) one[j] * one[j];
        rowDiff += (double) (one[j] - two[j]) * (one[j] - two[j]);
      }
      System.out.printf("step-1 embedding gradient, 4 vs 2 x 2: element %.3e off by %.2e relative (row %d, token %s); "
          + "the row's difference relative to its norm %.2e%n", one[worst], worstRelative, row,
          pairs.stream().anyMatch(p -> Arrays.stream(p.chosenIds()).anyMatch(t -> t == row)
              || Arrays.stream(p.rejectedIds()).anyMatch(t -> t == row)) ? "in a response" : "in prompts only",
          Math.sqrt(rowDiff / norm));
    }
  }

  private static float[] embeddingGradient(CausalLM m, RewardObjective objective, List<List<PreparedPair>> micro) {
    for (List<PreparedPair> batch : micro) {
      try (ai.djl.ndarray.NDManager scope = ai.djl.ndarray.NDManager.newBaseManager();
          ai.djl.training.GradientCollector gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
        gc.backward(objective.forward(scope, batch).lossSum());
      }
    }
    float[] out;
    try (ai.djl.ndarray.NDArray g = m.parameters().get("model.embed_tokens.weight").getArray().getGradient()) {
      out = g.toFloatArray();
    }
    for (ai.djl.nn.Parameter p : m.parameters().values()) {
      ai.djl.pytorch.jni.JniUtils.zeroGrad((ai.djl.pytorch.engine.PtNDArray) p.getArray());
    }
    return out;
  }

  private static Map<String, float[]> run(String model, String data, int micro, int accumulation) {
    JobConfig cfg = TrainingFixtures.config("model.path=" + model, "reward.learning_rate=0.002",
        "reward.warmup_steps=3", "reward.center_rewards_coefficient=0.01",
        "reward.per_device_train_batch_size=" + micro, "reward.gradient_accumulation_steps=" + accumulation);
    PreparedData d = PreparedData.open(Storage.local(), data);
    SessionSpec spec = SessionSpec.reward(cfg.model(), cfg.reward(), 16, d.trainRows());
    try (TrainingSession<?> s = TrainingSession.open(spec, Storage.local(), CausalLM.device("cpu"), d.trainFiles(),
        d.evalFiles(), GradientReducer.SINGLE, Optional.empty())) {
      for (int step = 1; step <= 16; step++) {
        s.step(step);
      }
      Map<String, float[]> out = new HashMap<>();
      s.policy().parameters().forEach((name, p) -> out.put(name, p.getArray().toFloatArray()));
      return out;
    }
  }

  private static void report(String what, Map<String, float[]> p, Map<String, float[]> q, Set<Integer> inResponses) {
    record Diff(String name, int index, double d) {}
    List<Diff> diffs = new ArrayList<>();
    for (String name : p.keySet()) {
      float[] a = p.get(name);
      float[] b = q.get(name);
      for (int i = 0; i < a.length; i++) {
        diffs.add(new Diff(name, i, Math.abs(a[i] - b[i])));
      }
    }
    diffs.sort(Comparator.comparingDouble(Diff::d).reversed());
    double worstElsewhere = diffs.stream().filter(x -> !x.name().equals("model.embed_tokens.weight"))
        .mapToDouble(Diff::d).max().orElse(0);
    System.out.printf("%s: largest parameter difference %.2e; outside the embedding %.2e%n", what, diffs.get(0).d(),
        worstElsewhere);
    int hidden = TrainingFixtures.SMALL.hiddenSize();
    Set<Integer> rows = new HashSet<>();
    for (Diff x : diffs) {
      if (rows.size() == 5 || x.d() < 1e-6) {
        break;
      }
      if (x.name().equals("model.embed_tokens.weight") && rows.add(x.index() / hidden)) {
        int token = x.index() / hidden;
        System.out.printf("  embedding row %d: %.2e (token %s)%n", token, x.d(),
            inResponses.contains(token) ? "occurs in a response" : "occurs in prompts only");
      }
    }
  }
}
