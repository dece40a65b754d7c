package io.sparkdpo.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.List;

/**
 * Averages gradients over replicas in fixed-size buckets, as PyTorch DDP does with {@code bucket_cap_mb}: walk the
 * gradients in parameter order ({@link BucketPlan}), copy one bucket's worth into a reusable direct buffer, all-reduce
 * it, copy it back, next. The memory this takes beyond the gradients is one bucket, whatever the model's size.
 *
 * <p>A tensor is read and written through a view of a contiguous range of its elements (a slice of its flattened
 * view), so no Java buffer ever spans a whole tensor (they cannot exceed 2 GiB). On the CPU the slice's
 * {@code toByteBuffer(true)} aliases the tensor's memory: one memcpy each way. That the write lands in the tensor is
 * checked, not assumed: DJL silently returns a copy for a non-contiguous tensor, and a write into a copy would be
 * lost. On a GPU the way out goes through a host copy and the way back through a device array copied in place into
 * the view (never {@code NDArray.set(Buffer)}, which re-points the tensor).
 */
public final class GradientBuckets {
  /** PyTorch DDP's default {@code bucket_cap_mb}: 25 MiB. */
  public static final long DEFAULT_BUCKET_BYTES = 25L << 20;
  /** The largest bucket a direct buffer can hold (2 GiB less one byte; rounded down to whole floats). */
  public static final long MAX_BUCKET_BYTES = Integer.MAX_VALUE;
  private static final NDIndex ALL = new NDIndex("...");

  private final int bucketElements;
  private long[] plannedSizes;
  private BucketPlan plan;
  private FloatBuffer buffer;

  /** @param bucketBytes capacity of a bucket, rounded down to whole floats */
  public GradientBuckets(long bucketBytes) {
    if (bucketBytes < Float.BYTES || bucketBytes > MAX_BUCKET_BYTES) {
      throw new IllegalArgumentException("an all-reduce bucket holds 4 bytes to " + MAX_BUCKET_BYTES
          + " bytes (got " + bucketBytes + ")");
    }
    this.bucketElements = (int) (bucketBytes / Float.BYTES);
  }

  /**
   * Replaces every gradient by its element-wise mean over the reducer's replicas, bucket by bucket; every replica
   * must pass gradients of the same sizes in the same order.
   *
   * @return the bytes all-reduced (4 per gradient element)
   */
  public long allReduceMean(List<NDArray> grads, GradientReducer reducer) {
    return allReduceMean(grads, reducer, new SquareSum());
  }

  /**
   * {@link #allReduceMean(List, GradientReducer)}, adding each reduced bucket to {@code reducedSquares} while it is
   * on the host anyway: the clipping norm of the reduced gradient without another pass over it, and the same bits
   * as {@link SquareSum#normOf} of the reduced gradients (the sum does not depend on the bucket boundaries).
   */
  public long allReduceMean(List<NDArray> grads, GradientReducer reducer, SquareSum reducedSquares) {
    requireFloat32(grads);
    BucketPlan p = planFor(grads);
    if (buffer == null || buffer.capacity() < p.largestBucket()) {
      buffer = ByteBuffer.allocateDirect(p.largestBucket() * Float.BYTES).order(ByteOrder.nativeOrder())
          .asFloatBuffer();
    }
    try (GradMode ignored = GradMode.off()) {
      for (BucketPlan.Bucket bucket : p.buckets()) {
        buffer.clear().limit(bucket.elements());
        for (BucketPlan.Segment s : bucket.segments()) {
          read(grads.get(s.tensor()), s, buffer);
        }
        reducer.allReduceMean(buffer);
        reducedSquares.add(buffer.duplicate().position(0).limit(bucket.elements()));
        for (BucketPlan.Segment s : bucket.segments()) {
          write(buffer, s, grads.get(s.tensor()), s.tensor());
        }
      }
    }
    return p.totalElements() * Float.BYTES;
  }

  /** The plan for these gradients' sizes, kept while they stay the same (every step of a run). */
  BucketPlan planFor(List<NDArray> grads) {
    long[] sizes = new long[grads.size()];
    for (int i = 0; i < sizes.length; i++) {
      sizes[i] = grads.get(i).size();
    }
    if (!Arrays.equals(sizes, plannedSizes)) {
      plan = BucketPlan.of(sizes, bucketElements);
      plannedSizes = sizes;
    }
    return plan;
  }

  /** Copies segment {@code s} of gradient {@code g} into its place in the bucket. */
  private static void read(NDArray g, BucketPlan.Segment s, FloatBuffer bucket) {
    try (NDArray flat = g.flatten(); NDArray part = flat.get(range(s))) {
      if (g.getDevice().isGpu()) {
        try (NDArray host = part.toDevice(Device.cpu(), true)) {
          bucket.put(s.bucketOffset(), floats(host), 0, s.length());
        }
      } else {
        bucket.put(s.bucketOffset(), floats(part), 0, s.length());
      }
    }
  }

  /** Copies segment {@code s}'s place in the bucket back into gradient {@code g}, in place. */
  private static void write(FloatBuffer bucket, BucketPlan.Segment s, NDArray g, int index) {
    FloatBuffer source = bucket.slice(s.bucketOffset(), s.length());
    try (NDArray flat = g.flatten(); NDArray part = flat.get(range(s))) {
      if (g.getDevice().isGpu()) {
        try (NDManager scratch = g.getManager().newSubManager();
             NDArray copy = scratch.create(source, new Shape(s.length()))) {
          part.set(ALL, copy);
        }
      } else {
        aliasOf(g, part, s, index).put(source);
      }
    }
  }

  /**
   * The slice's memory as floats, after checking that a write through it reaches {@code g} itself: a marker written
   * at the slice's first element must read back from {@code g} at that element.
   */
  private static FloatBuffer aliasOf(NDArray g, NDArray part, BucketPlan.Segment s, int index) {
    FloatBuffer view = floats(part);
    float original = view.get(0);
    float marker = Float.intBitsToFloat(Float.floatToRawIntBits(original) ^ 1);
    view.put(0, marker);
    float seen;
    try (NDArray element = g.get(new NDIndex(unravel(g.getShape(), s.offset())))) {
      seen = element.toFloatArray()[0];
    }
    view.put(0, original);
    if (Float.floatToRawIntBits(seen) != Float.floatToRawIntBits(marker)) {
      throw new IllegalStateException("gradient " + index + " " + g.getShape() + " is not contiguous in memory: a "
          + "write through its flattened view would be lost");
    }
    return view;
  }

  private static NDIndex range(BucketPlan.Segment s) {
    return new NDIndex().addSliceDim(s.offset(), s.offset() + s.length());
  }

  private static FloatBuffer floats(NDArray contiguous) {
    return contiguous.toByteBuffer(true).order(ByteOrder.nativeOrder()).asFloatBuffer();
  }

  /** Row-major indices of element {@code flatIndex} of a tensor of this shape. */
  static long[] unravel(Shape shape, long flatIndex) {
    long[] indices = new long[shape.dimension()];
    long rest = flatIndex;
    for (int d = indices.length - 1; d >= 0; d--) {
      indices[d] = rest % shape.get(d);
      rest /= shape.get(d);
    }
    return indices;
  }

  private static void requireFloat32(List<NDArray> grads) {
    for (int i = 0; i < grads.size(); i++) {
      if (grads.get(i).getDataType() != DataType.FLOAT32) {
        throw new IllegalArgumentException("gradients must be float32 for the all-reduce, gradient " + i + " is "
            + grads.get(i).getDataType());
      }
    }
  }
}
