package io.sparkdpo.train;

import java.util.ArrayList;
import java.util.List;

/**
 * How the gradients, in parameter order, fill all-reduce buckets of a fixed capacity: a tensor may span several
 * buckets and a bucket may hold several tensors, so only a bucket, never the model or one tensor, has to fit a Java
 * buffer. Counts and offsets within tensors are longs: a model (or one embedding) may hold more than 2^31 elements.
 *
 * @param totalElements elements of all tensors together
 * @param bucketElements capacity of a bucket; every bucket but the last is full
 * @param buckets in order: all-reduced one after the other
 */
public record BucketPlan(long totalElements, int bucketElements, List<Bucket> buckets) {

  /**
   * One contiguous run of a tensor's elements (in its row-major order) inside one bucket.
   *
   * @param tensor index into the gradient list
   * @param offset first element, counted in the flattened tensor
   * @param length elements in this run
   * @param bucketOffset where the run starts in the bucket
   */
  public record Segment(int tensor, long offset, int length, int bucketOffset) {}

  /** One all-reduce: {@code elements} floats made of its segments, laid end to end. */
  public record Bucket(int elements, List<Segment> segments) {
    public Bucket {
      segments = List.copyOf(segments);
    }
  }

  public BucketPlan {
    buckets = List.copyOf(buckets);
  }

  /**
   * @param sizes element count of each tensor, in order
   * @param bucketElements floats one bucket holds (at least 1)
   */
  public static BucketPlan of(long[] sizes, int bucketElements) {
    if (bucketElements < 1) {
      throw new IllegalArgumentException("a bucket must hold at least one element (got " + bucketElements + ")");
    }
    long total = 0;
    for (int i = 0; i < sizes.length; i++) {
      if (sizes[i] < 0) {
        throw new IllegalArgumentException("tensor " + i + " has a negative size " + sizes[i]);
      }
      total = Math.addExact(total, sizes[i]);
    }
    List<Bucket> buckets = new ArrayList<>();
    List<Segment> open = new ArrayList<>();
    int filled = 0;
    for (int t = 0; t < sizes.length; t++) {
      long offset = 0;
      while (offset < sizes[t]) {
        int length = (int) Math.min(sizes[t] - offset, bucketElements - filled);
        open.add(new Segment(t, offset, length, filled));
        offset += length;
        filled += length;
        if (filled == bucketElements) {
          buckets.add(new Bucket(filled, open));
          open = new ArrayList<>();
          filled = 0;
        }
      }
    }
    if (filled > 0) {
      buckets.add(new Bucket(filled, open));
    }
    return new BucketPlan(total, bucketElements, buckets);
  }

  /** The largest bucket: what the reusable buffer must hold. */
  public int largestBucket() {
    return buckets.isEmpty() ? 0 : buckets.get(0).elements();
  }
}
