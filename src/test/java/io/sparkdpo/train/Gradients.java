package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Parameter;
import io.sparkdpo.model.CausalLM;
import java.util.ArrayList;
import java.util.List;

/** Test helper: the accumulated gradient of every parameter of a model, in model order, zeroed after reading. */
final class Gradients {
  private Gradients() {}

  static float[][] take(CausalLM model) {
    List<Parameter> params = new ArrayList<>(model.parameters().values());
    float[][] out = new float[params.size()][];
    try (GradMode ignored = GradMode.off()) {
      for (int i = 0; i < out.length; i++) {
        try (NDArray g = params.get(i).getArray().getGradient()) {
          out[i] = g.toFloatArray();
          g.muli(0);
        }
      }
    }
    return out;
  }
}
