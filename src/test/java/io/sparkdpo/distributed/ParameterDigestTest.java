package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

class ParameterDigestTest {
  /** Arrays over the slice limit (2 GiB in DJL's int-indexed buffers) are hashed in slices: same digest. */
  @Test
  void anArrayHashedInSlicesHasTheDigestOfOneBuffer() {
    long saved = ParameterDigest.sliceBytes;
    try (NDManager m = NDManager.newBaseManager()) {
      float[] values = new float[37 * 29];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) Math.sin(i);
      }
      NDArray a = m.create(values, new Shape(37, 29));
      long whole = new ParameterDigest().update(a).value();
      ParameterDigest.sliceBytes = 100; // 25 floats: 43 slices, the last one short
      long sliced = new ParameterDigest().update(a).value();
      assertEquals(whole, sliced);
      assertEquals(ParameterDigest.of(values), sliced, "the bytes of the float values, in order");
      int arrays = m.getManagedArrays().size();
      new ParameterDigest().update(a);
      assertEquals(arrays, m.getManagedArrays().size(), "slices and views are closed");
      values[values.length - 1] += 1e-3f;
      assertNotEquals(ParameterDigest.of(values), sliced);
    } finally {
      ParameterDigest.sliceBytes = saved;
    }
  }
}
