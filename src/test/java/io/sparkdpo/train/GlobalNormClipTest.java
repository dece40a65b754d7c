package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.Test;

class GlobalNormClipTest {
  @Test
  void matchesTorchClipGradNorm() {
    JsonNode cases = Golden.load("clip.json").get("cases");
    for (JsonNode c : cases) {
      try (NDManager m = NDManager.newBaseManager()) {
        List<NDArray> grads = List.of(
            m.create(Golden.floats(c.get("grads").get(0)), new Shape(Golden.longs(c.get("shapes").get(0)))),
            m.create(Golden.floats(c.get("grads").get(1)), new Shape(Golden.longs(c.get("shapes").get(1)))));
        double maxNorm = c.get("max_norm").asDouble();
        double norm = GlobalNormClip.clip(grads, maxNorm);
        Golden.assertClose("total norm", c.get("total_norm").asDouble(), norm, 2e-7);
        for (int i = 0; i < 2; i++) {
          Golden.assertClose("clipped " + i + " at " + maxNorm, Golden.floats(c.get("clipped").get(i)),
              grads.get(i).toFloatArray(), 2e-7);
        }
      }
    }
  }

  @Test
  void zeroMaxNormOnlyMeasures() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray g = m.create(new float[] {30f, 40f});
      assertEquals(50.0, GlobalNormClip.clip(List.of(g), 0), 2e-7);
      assertArrayEquals(new float[] {30f, 40f}, g.toFloatArray());
    }
  }

  @Test
  void nonFiniteNormLeavesGradientsAlone() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray a = m.create(new float[] {1f, Float.NaN});
      NDArray b = m.create(new float[] {100f});
      assertTrue(Double.isNaN(GlobalNormClip.clip(List.of(a, b), 1.0)));
      assertEquals(100f, b.getFloat(0));
      NDArray inf = m.create(new float[] {Float.POSITIVE_INFINITY});
      assertTrue(Double.isInfinite(GlobalNormClip.clip(List.of(inf, b), 1.0)));
      assertEquals(100f, b.getFloat(0));
    }
  }
}
