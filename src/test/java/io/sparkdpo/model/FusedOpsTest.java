package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.sparkdpo.io.Storage;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class FusedOpsTest {
  @Test
  void theFusedKernelsAreReachableThroughTorchScriptOnThisEngine() {
    assertTrue(FusedOps.available(), "scaled_dot_product_attention and silu via TorchScript");
  }

  @Test
  void fusedAndExplicitOpsGiveTheSameLogitsAndGradients() {
    try (CausalLM model = CausalLM.load(GoldenReferenceTest.folder("llama_gqa_tied_f32"), Storage.local(),
        Device.cpu())) {
      Map<String, float[]> fused = gradients(model, true);
      Map<String, float[]> explicit = gradients(model, false);
      for (String name : fused.keySet()) {
        float[] a = fused.get(name);
        float[] b = explicit.get(name);
        double scale = 0;
        double diff = 0;
        for (int i = 0; i < a.length; i++) {
          scale = Math.max(scale, Math.abs(b[i]));
          diff = Math.max(diff, Math.abs(a[i] - b[i]));
        }
        assertTrue(scale > 0, name);
        assertTrue(diff <= 1e-4 * Math.max(1, scale), name + ": " + diff + " of " + scale);
      }
    }
  }

  private static Map<String, float[]> gradients(CausalLM model, boolean fused) {
    model.useFusedOps(fused);
    Map<String, float[]> out = new LinkedHashMap<>();
    try (NDManager m = NDManager.newBaseManager();
        GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      NDArray ids = m.create(new int[] {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7}, new Shape(2, 7));
      NDArray logits = model.logits(ids, true);
      out.put("logits", logits.toFloatArray());
      collector.backward(logits.logSoftmax(2).get(":, :, 7").sum());
    }
    model.parameters().forEach((name, p) -> {
      try (NDArray grad = p.getArray().getGradient()) {
        out.put(name, grad.toFloatArray());
        grad.subi(grad);
      }
    });
    assertEquals(21, out.size());
    return out;
  }
}
