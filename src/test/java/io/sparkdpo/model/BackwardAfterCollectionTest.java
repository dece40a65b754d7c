package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import io.sparkdpo.testing.DirectMemoryChurn;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A training step runs backward after the forward pass has returned and freed its scope (a DPO step runs the
 * reference model in between). On the CPU an array DJL makes from Java data aliases a Java direct buffer, freed
 * once the array is closed and collected; anything autograd saves for backward (gather index, mask, rotary table,
 * row order) must therefore own its memory, or backward reads whatever reused that memory.
 */
class BackwardAfterCollectionTest {
  private static final ModelConfig CONFIG = ModelConfig.llama(512, 64, 128, 2, 4, 2, true);

  @Test
  void gradientsAreTheSameWhenTheForwardsBuffersAreCollectedAndReusedBeforeBackward() {
    List<int[]> prompts = List.of(new int[] {5, 9, 200, 17}, new int[] {3, 4});
    List<int[]> responses = List.of(new int[] {44, 45, 46}, new int[] {300, 301, 302, 303, 304, 305});
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 3)) {
      float[][] direct = gradients(model, prompts, responses, false);
      float[][] disturbed = gradients(model, prompts, responses, true);
      assertTrue(Arrays.stream(direct).anyMatch(g -> norm(g) > 0), "gradients flow");
      for (int i = 0; i < direct.length; i++) {
        assertArrayEquals(direct[i], disturbed[i], 0f, "parameter " + i);
      }
    }
  }

  private static float[][] gradients(CausalLM model, List<int[]> prompts, List<int[]> responses, boolean churn) {
    List<Parameter> params = new ArrayList<>(model.parameters().values());
    try (NDManager step = NDManager.newBaseManager();
         GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      SequenceLogProbs.Batch b = new SequenceLogProbs(model).compute(step, prompts, responses, true);
      if (churn) {
        DirectMemoryChurn.run();
      }
      collector.backward(b.sum().sum());
    }
    float[][] out = new float[params.size()][];
    for (int i = 0; i < out.length; i++) {
      try (NDArray g = params.get(i).getArray().getGradient()) {
        out[i] = g.toFloatArray();
        g.subi(g); // zero for the next run
      }
    }
    return out;
  }

  private static double norm(float[] g) {
    double s = 0;
    for (float x : g) {
      s += x * x;
    }
    return Math.sqrt(s);
  }
}
