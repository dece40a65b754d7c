package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.sparkdpo.config.TrainSettings.LossType;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ScalarOps;
import io.sparkdpo.model.SequenceLogProbs;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * The DPO paper's gradient, checked on the built-in tiny model (4M parameters) with policy = reference: the loss is
 * ln 2 and autograd's gradient of the mean loss equals {@code -(beta/2) mean_i (grad log pi(y_w|x) - grad log
 * pi(y_l|x))}, the gradient of the log-likelihood difference scaled by sigma(0) = 1/2.
 */
class DpoGradientInvariantTest {
  private static final double BETA = 0.1;

  @Test
  void withPolicyEqualToReferenceTheLossIsLn2AndItsGradientIsHalfBetaTimesTheLogLikelihoodDifference() {
    List<PreparedPair> pairs = TrainingFixtures.pairs("inv", 3, 4096, 17);
    int n = pairs.size();
    try (CausalLM policy = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), CausalLM.device("cpu"));
         CausalLM reference = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), CausalLM.device("cpu"));
         DpoObjective dpo = new DpoObjective(policy, reference, new DpoLoss(LossType.SIGMOID, BETA, 0))) {
      double[] loss = new double[1];
      float[][] autograd = gradients(policy, m -> {
        Objective.Forward f = dpo.forward(m, pairs);
        loss[0] = f.lossValue() / n;
        return ScalarOps.div(f.lossSum(), n);
      });
      assertEquals(Math.log(2), loss[0], 1e-6);

      SequenceLogProbs logProbs = new SequenceLogProbs(policy);
      float[][] likelihood = gradients(policy, m -> {
        List<int[]> prompts = new ArrayList<>();
        List<int[]> chosen = new ArrayList<>();
        List<int[]> rejected = new ArrayList<>();
        pairs.forEach(p -> {
          prompts.add(p.promptIds());
          chosen.add(p.chosenIds());
          rejected.add(p.rejectedIds());
        });
        SequenceLogProbs.Pairs lp = logProbs.computePairs(m, prompts, chosen, rejected, true);
        return lp.chosen().sum().sum().sub(lp.rejected().sum().sum());
      });

      double scale = -(BETA / 2) / n;
      double largest = 0;
      double worst = 0;
      for (int i = 0; i < autograd.length; i++) {
        for (int j = 0; j < autograd[i].length; j++) {
          double analytic = scale * likelihood[i][j];
          largest = Math.max(largest, Math.abs(analytic));
          worst = Math.max(worst, Math.abs(autograd[i][j] - analytic));
        }
      }
      assertTrue(largest > 1e-4, "a gradient to compare: " + largest);
      assertTrue(worst <= 1e-5 * largest, "max difference " + worst + " vs largest component " + largest);
    }
  }

  /** Gradients of the scalar {@code objective} builds, per parameter; zeroed afterwards. */
  private static float[][] gradients(CausalLM model, Function<NDManager, NDArray> objective) {
    try (NDManager m = NDManager.newBaseManager();
         GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      collector.backward(objective.apply(m));
    }
    return Gradients.take(model);
  }
}
