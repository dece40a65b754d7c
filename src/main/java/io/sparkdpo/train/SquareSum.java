package io.sparkdpo.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.List;

/**
 * The sum of squares of float32 gradient elements, in float64 on the host, in one fixed order: the elements in
 * sequence (parameter order, row-major), dealt to four lanes by their position in that sequence, the lanes added as
 * {@code (l0 + l1) + (l2 + l3)}. The result depends on the elements alone: not on threads, CPU kernels (libtorch's
 * vectorised norm rounds differently with AVX-512 and without), device, or how the sequence arrives in buffers. So
 * replicas holding the same all-reduced gradient clip by the same bits, whatever executor they run on.
 *
 * <p>A float32 squared is exact in float64, and no finite float32 overflows it; an inf or NaN makes the sum non-finite.
 */
public final class SquareSum {
  /** Elements read per slice when walking a tensor: a Java buffer cannot span more than 2 GiB. */
  private static final int SLICE = 1 << 24;
  private double l0;
  private double l1;
  private double l2;
  private double l3;
  private long count;

  /** Adds the buffer's remaining elements (position to limit) as the next ones of the sequence. */
  public void add(FloatBuffer floats) {
    int i = floats.position();
    int end = floats.limit();
    while (i < end && (count & 3) != 0) { // finish the current group of four
      addOne(floats.get(i++));
    }
    double a = l0;
    double b = l1;
    double c = l2;
    double d = l3;
    for (; i + 3 < end; i += 4) {
      double x0 = floats.get(i);
      double x1 = floats.get(i + 1);
      double x2 = floats.get(i + 2);
      double x3 = floats.get(i + 3);
      a += x0 * x0;
      b += x1 * x1;
      c += x2 * x2;
      d += x3 * x3;
      count += 4;
    }
    l0 = a;
    l1 = b;
    l2 = c;
    l3 = d;
    while (i < end) {
      addOne(floats.get(i++));
    }
  }

  private void addOne(float v) {
    double x = v;
    switch ((int) (count & 3)) {
      case 0 -> l0 += x * x;
      case 1 -> l1 += x * x;
      case 2 -> l2 += x * x;
      default -> l3 += x * x;
    }
    count++;
  }

  /** Elements added so far. */
  public long count() {
    return count;
  }

  public double sum() {
    return (l0 + l1) + (l2 + l3);
  }

  /** The L2 norm of everything added. */
  public double norm() {
    return Math.sqrt(sum());
  }

  /**
   * The L2 norm of float32 gradients viewed as one vector, read on the host in slices (on the CPU the slices alias
   * the tensors' memory; a GPU tensor is copied slice by slice).
   */
  public static double normOf(List<NDArray> grads) {
    SquareSum sum = new SquareSum();
    try (GradMode ignored = GradMode.off()) {
      for (NDArray g : grads) {
        if (g.getDataType() != DataType.FLOAT32) {
          throw new IllegalArgumentException("gradients are float32, got " + g.getDataType() + " " + g.getShape());
        }
        long size = g.size();
        try (NDArray flat = g.flatten()) {
          for (long off = 0; off < size; off += SLICE) {
            long end = Math.min(size, off + SLICE);
            try (NDArray part = flat.get(new NDIndex().addSliceDim(off, end))) {
              if (g.getDevice().isGpu()) {
                try (NDArray host = part.toDevice(Device.cpu(), true)) {
                  sum.add(floats(host));
                }
              } else {
                sum.add(floats(part));
              }
            }
          }
        }
      }
    }
    return sum.norm();
  }

  private static FloatBuffer floats(NDArray part) {
    return part.toByteBuffer(true).order(ByteOrder.nativeOrder()).asFloatBuffer();
  }
}
