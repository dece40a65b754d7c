package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Casts are recorded by autograd (docs/djl-pitfalls.md item 6): DJL's own {@code toType} is not, and a backward
 * pass through it stops; bf16 arrays made by TorchScript must not be inference tensors, or autograd refuses to save
 * them for backward (a frozen bf16 weight multiplying an activation that needs a gradient).
 */
class CastsGradientTest {
  @ParameterizedTest
  @EnumSource(value = DataType.class, names = {"FLOAT32", "FLOAT16", "BFLOAT16"})
  void aRoundTripThroughEachDtypePassesTheGradientOn(DataType dtype) {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray x = m.create(new float[] {1, 2, 3});
      x.setRequiresGradient(true);
      try (GradientCollector c = Engine.getInstance().newGradientCollector()) {
        NDArray there = Casts.to(x, dtype);
        NDArray back = Casts.to(there.mul(there), DataType.FLOAT32);
        c.backward(back.sum());
      }
      assertArrayEquals(new float[] {2, 4, 6}, x.getGradient().toFloatArray(), 0f);
    }
  }

  @Test
  void aFrozenBfloat16WeightFromCastsCanBeSavedForBackward() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray w = Casts.to(m.create(new float[] {0.5f, -2f, 4f}), DataType.BFLOAT16);
      NDArray empty = Casts.empty(m, new ai.djl.ndarray.types.Shape(3), DataType.BFLOAT16);
      java.nio.ShortBuffer bits = empty.toByteBuffer(true).order(java.nio.ByteOrder.nativeOrder()).asShortBuffer();
      for (int i = 0; i < 3; i++) {
        bits.put(i, Safetensors.floatToBf16(1f));
      }
      NDArray x = m.create(new float[] {1, 2, 3});
      x.setRequiresGradient(true);
      try (GradientCollector c = Engine.getInstance().newGradientCollector()) {
        // Each mul saves its other operand for backward: w (made by Casts.to) and the ones (made by Casts.empty).
        NDArray xb = Casts.to(x, DataType.BFLOAT16);
        c.backward(Casts.to(xb.mul(w).mul(empty), DataType.FLOAT32).sum());
      }
      assertArrayEquals(new float[] {0.5f, -2f, 4f}, x.getGradient().toFloatArray(), 0f);
    }
  }
}
