package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.sparkdpo.config.TrainSettings.LossType;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.testing.DirectMemoryChurn;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every objective's gradient is the same whether or not the JVM collects and reuses the forward pass's Java-backed
 * buffers before backward (a DPO step runs the reference model in between; any GC may). Constants in the losses
 * (beta, label smoothing, the token count) must reach backward intact.
 */
class ObjectiveBackwardAfterCollectionTest {

  @ParameterizedTest
  @CsvSource({"sigmoid, 0.1", "robust, 0.1", "hinge, 0", "ipo, 0", "sft, 0"})
  void gradientsSurviveACollectionBetweenForwardAndBackward(String loss, double smoothing) {
    List<PreparedPair> pairs = TrainingFixtures.pairs("g", 3, TrainingFixtures.SMALL.vocabSize(), 9);
    try (CausalLM policy = CausalLM.create(TrainingFixtures.SMALL, CausalLM.device("cpu"), 4)) {
      float[][] direct;
      float[][] disturbed;
      if (loss.equals("sft")) {
        List<LmExample> lm = pairs.stream().map(p -> new LmExample(p.pairId(), p.promptIds(), p.chosenIds())).toList();
        SftObjective sft = new SftObjective(policy, true);
        direct = gradients(policy, sft, lm, false);
        disturbed = gradients(policy, sft, lm, true);
      } else {
        LossType type = LossType.valueOf(loss.toUpperCase());
        CausalLM reference = CausalLM.create(TrainingFixtures.SMALL, CausalLM.device("cpu"), 5);
        try (DpoObjective dpo = new DpoObjective(policy, reference, new DpoLoss(type, 0.5, smoothing))) {
          direct = gradients(policy, dpo, pairs, false);
          disturbed = gradients(policy, dpo, pairs, true);
        }
      }
      boolean moved = false;
      for (int i = 0; i < direct.length; i++) {
        assertArrayEquals(direct[i], disturbed[i], 0f, loss + ": parameter " + i);
        for (float g : direct[i]) {
          moved |= g != 0;
        }
      }
      assertTrue(moved, "gradients flow");
    }
  }

  private static <E> float[][] gradients(CausalLM model, Objective<E> objective, List<E> batch, boolean churn) {
    try (NDManager step = NDManager.newBaseManager();
         GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      Objective.Forward f = objective.forward(step, batch);
      if (churn) {
        DirectMemoryChurn.run();
      }
      collector.backward(f.lossSum());
    }
    return Gradients.take(model);
  }
}
