package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * DJL frees native memory only when an array is closed, so the count of live arrays in the whole NDManager tree
 * (from the engine's system manager down) must not grow with the number of steps.
 */
class MemoryDisciplineTest {
  static final ModelConfig MICRO = ModelConfig.llama(64, 32, 48, 2, 4, 2, false);

  /** Arrays reachable from the engine's system manager, the root of every manager (found as a base manager's parent). */
  static int liveArrays() {
    try (NDManager probe = NDManager.newBaseManager("PyTorch")) {
      return probe.getParentManager().getManagedArrays().size();
    }
  }

  @Test
  void aThousandForwardBackwardStepsLeaveTheLiveArrayCountFlat() {
    List<int[]> prompts = List.of(new int[] {1, 2, 3}, new int[] {4, 5});
    List<int[]> chosen = List.of(new int[] {6, 7, 0}, new int[] {8, 0});
    List<int[]> rejected = List.of(new int[] {9, 0}, new int[] {10, 11, 12, 0});
    try (CausalLM model = CausalLM.create(MICRO, Device.cpu(), 1); NDManager root = NDManager.newBaseManager()) {
      SequenceLogProbs logProbs = new SequenceLogProbs(model);
      Generator generator = new Generator(model);
      int modelArrays = model.manager().getManagedArrays().size();
      assertEquals(model.parameters().size(), modelArrays, "the model manager holds exactly the parameters");
      Runnable step = () -> {
        try (NDManager scope = root.newSubManager();
            GradientCollector collector = Engine.getInstance().newGradientCollector()) {
          SequenceLogProbs.Pairs pairs = logProbs.computePairs(scope, prompts, chosen, rejected, true);
          collector.backward(pairs.chosen().sum().sub(pairs.rejected().sum()).mean());
        }
        for (Parameter p : model.parameters().values()) {
          try (NDArray grad = p.getArray().getGradient()) { // getGradient() wraps anew each call: close it
            grad.subi(grad);
          }
        }
      };
      for (int i = 0; i < 10; i++) {
        step.run();
      }
      int baseline = liveArrays();
      for (int i = 1; i <= 1000; i++) {
        step.run();
        if (i % 250 == 0) {
          try (NDManager scope = root.newSubManager()) {
            logProbs.compute(scope, prompts, chosen, false);
          }
          generator.generate(prompts, new SamplingSettings(1.0, 5, 0.9, 4, i));
          assertEquals(baseline, liveArrays(), "live arrays after step " + i);
        }
      }
      assertEquals(baseline, liveArrays());
      assertEquals(modelArrays, model.manager().getManagedArrays().size(), "nothing attached to the model");
      assertTrue(root.getManagedArrays().isEmpty());
    }
  }
}
