package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.FloatBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

class FlatGradientsTest {
  @Test
  void packsInOrderAndUnpacksIntoTheParametersGradients() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray a = m.create(new float[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3));
      NDArray b = m.create(new float[] {7, 8});
      a.setRequiresGradient(true);
      b.setRequiresGradient(true);
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        gc.backward(a.square().sum().add(b.mul(3).sum()));
      }
      try (GradientAccumulator acc = new GradientAccumulator(List.of(a, b))) {
        List<NDArray> grads = acc.gradients();
        FloatBuffer flat = FlatGradients.allocate(grads);
        assertEquals(8, flat.capacity());
        FlatGradients.pack(grads, flat);
        float[] packed = new float[8];
        flat.duplicate().get(packed);
        assertArrayEquals(new float[] {2, 4, 6, 8, 10, 12, 3, 3}, packed);
        for (int i = 0; i < 8; i++) {
          flat.put(i, -i);
        }
        FlatGradients.unpack(flat, grads);
        // Fresh wrappers read the parameters' own gradient tensors: the write went into them.
        try (NDArray ga = a.getGradient(); NDArray gb = b.getGradient()) {
          assertArrayEquals(new float[] {0, -1, -2, -3, -4, -5}, ga.toFloatArray());
          assertArrayEquals(new float[] {-6, -7}, gb.toFloatArray());
        }
        acc.zero();
      }
    }
  }

  @Test
  void collectorSumsBackwardPassesSoTheAccumulatorNeedsNoCopy() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray p = m.create(new float[] {1, 2});
      p.setRequiresGradient(true);
      try (GradientAccumulator acc = new GradientAccumulator(List.of(p))) {
        for (int i = 0; i < 3; i++) {
          try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            gc.backward(p.mul(p).sum());
          }
          acc.addMicroBatch(2);
        }
        assertEquals(3, acc.microBatches());
        assertEquals(6, acc.items());
        assertArrayEquals(new float[] {6, 12}, acc.gradients().get(0).toFloatArray(), "3 x 2p");
        acc.scale(1.0 / 6);
        assertArrayEquals(new float[] {1, 2}, acc.gradients().get(0).toFloatArray(), 1e-6f);
        int live = m.getManagedArrays().size();
        acc.zero();
        assertEquals(live - 1, m.getManagedArrays().size(), "the gradient wrapper is closed");
        assertArrayEquals(new float[] {0, 0}, acc.gradients().get(0).toFloatArray());
        assertEquals(0, acc.items());
        acc.zero();
      }
    }
  }
}
