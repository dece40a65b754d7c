package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.List;

/**
 * Copies gradients into one direct float buffer for the all-reduce and back. On the CPU both directions are one
 * memcpy per tensor through a buffer that aliases the tensor's memory; on a GPU the way back goes through a
 * temporary device array copied in place (never {@code NDArray.set(Buffer)}, which re-points the tensor).
 */
public final class FlatGradients {
  private static final NDIndex ALL = new NDIndex("...");

  private FlatGradients() {}

  /** Total number of elements. */
  public static long size(List<NDArray> grads) {
    long n = 0;
    for (NDArray g : grads) {
      n += g.size();
    }
    return n;
  }

  /** A direct, native-order buffer of {@code size(grads)} floats. */
  public static FloatBuffer allocate(List<NDArray> grads) {
    return ByteBuffer.allocateDirect(Math.toIntExact(4 * size(grads))).order(ByteOrder.nativeOrder())
        .asFloatBuffer();
  }

  /** Writes all gradients, in order, into {@code flat} from position 0. */
  public static void pack(List<NDArray> grads, FloatBuffer flat) {
    requireFloat32(grads);
    flat.clear();
    for (NDArray g : grads) {
      flat.put(g.toByteBuffer(true).order(ByteOrder.nativeOrder()).asFloatBuffer());
    }
    flat.flip();
  }

  /** Overwrites all gradients, in order, with the contents of {@code flat}. */
  public static void unpack(FloatBuffer flat, List<NDArray> grads) {
    requireFloat32(grads);
    FloatBuffer source = flat.duplicate();
    source.clear();
    try (GradMode ignored = GradMode.off()) {
      for (NDArray g : grads) {
        int n = Math.toIntExact(g.size());
        FloatBuffer slice = source.slice();
        slice.limit(n);
        if (g.getDevice().isGpu()) {
          try (NDManager scratch = g.getManager().newSubManager(); NDArray copy = scratch.create(slice, g.getShape())) {
            g.set(ALL, copy);
          }
        } else {
          g.toByteBuffer(true).order(ByteOrder.nativeOrder()).asFloatBuffer().put(slice);
        }
        source.position(source.position() + n);
      }
    }
  }

  private static void requireFloat32(List<NDArray> grads) {
    for (NDArray g : grads) {
      if (g.getDataType() != DataType.FLOAT32) {
        throw new IllegalArgumentException("gradients must be float32 for the all-reduce, got " + g.getDataType());
      }
    }
  }
}
