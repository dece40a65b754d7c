package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class GradientBucketsTest {

  /** A reducer of "two replicas" that records each bucket and overwrites it with -(its global element index). */
  private static final class RecordingReducer implements GradientReducer {
    final List<float[]> buckets = new ArrayList<>();
    int written;

    @Override
    public int worldSize() {
      return 2;
    }

    @Override
    public void allReduceMean(FloatBuffer direct) {
      assertTrue(direct.isDirect(), "the bucket is a direct buffer");
      float[] seen = new float[direct.remaining()];
      direct.duplicate().get(seen);
      buckets.add(seen);
      for (int i = direct.position(); i < direct.limit(); i++) {
        direct.put(i, -(written++));
      }
    }
  }

  @Test
  void aTensorSpansBucketsAndABucketHoldsTensorsAndTheResultLandsInTheParametersGradients() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray a = m.create(new float[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3));
      NDArray b = m.create(new float[] {7, 8});
      a.setRequiresGradient(true);
      b.setRequiresGradient(true);
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        gc.backward(a.square().sum().add(b.mul(3).sum()));
      }
      try (GradientAccumulator acc = new GradientAccumulator(List.of(a, b))) {
        RecordingReducer reducer = new RecordingReducer();
        List<NDArray> grads = acc.gradients();
        int live = m.getManagedArrays().size();
        // 5 floats a bucket: a's 6 elements span two buckets, the second also holds b.
        long bytes = new GradientBuckets(5 * Float.BYTES).allReduceMean(grads, reducer);
        assertEquals(8 * Float.BYTES, bytes);
        assertEquals(2, reducer.buckets.size());
        assertArrayEquals(new float[] {2, 4, 6, 8, 10}, reducer.buckets.get(0));
        assertArrayEquals(new float[] {12, 3, 3}, reducer.buckets.get(1));
        assertEquals(live, m.getManagedArrays().size(), "every view is closed");
        // Fresh wrappers read the parameters' own gradient tensors: the writes went into them.
        try (NDArray ga = a.getGradient(); NDArray gb = b.getGradient()) {
          assertArrayEquals(new float[] {0, -1, -2, -3, -4, -5}, ga.toFloatArray());
          assertArrayEquals(new float[] {-6, -7}, gb.toFloatArray());
        }
        acc.zero();
      }
    }
  }

  @Test
  void aGradientThatIsNotContiguousIsRefusedRatherThanWrittenIntoACopy() {
    try (NDManager m = NDManager.newBaseManager()) {
      // A transposed view: DJL's flattened view and toByteBuffer(true) of it would be copies.
      NDArray transposed = m.create(new float[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3)).transpose();
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> new GradientBuckets(1024).allReduceMean(List.of(transposed), new RecordingReducer()));
      assertEquals("gradient 0 (3, 2) is not contiguous in memory: a write through its flattened view would be "
          + "lost", e.getMessage());
    }
  }

  @Test
  void thePlanCountsInLongsSoModelsAndTensorsOverTwoBillionElementsFit() {
    long huge = 3_000_000_000L;
    long[] sizes = {huge, 7, (1L << 31) + 1, 5};
    int bucket = (int) (GradientBuckets.DEFAULT_BUCKET_BYTES / Float.BYTES);
    BucketPlan plan = BucketPlan.of(sizes, bucket);

    long total = huge + 7 + (1L << 31) + 1 + 5;
    assertEquals(5_147_483_661L, total);
    assertEquals(total, plan.totalElements());
    assertEquals((total + bucket - 1) / bucket, plan.buckets().size());
    assertEquals(bucket, plan.largestBucket());
    long[] covered = new long[sizes.length];
    int lastTensor = 0;
    for (int i = 0; i < plan.buckets().size(); i++) {
      BucketPlan.Bucket b = plan.buckets().get(i);
      int expected = i < plan.buckets().size() - 1 ? bucket : (int) (total % bucket);
      assertEquals(expected, b.elements(), "bucket " + i);
      int filled = 0;
      for (BucketPlan.Segment s : b.segments()) {
        assertEquals(filled, s.bucketOffset());
        assertTrue(s.tensor() >= lastTensor, "tensors in order");
        assertEquals(covered[s.tensor()], s.offset(), "tensor " + s.tensor() + " continues where it stopped");
        covered[s.tensor()] += s.length();
        filled += s.length();
        lastTensor = s.tensor();
      }
      assertEquals(b.elements(), filled);
    }
    assertArrayEquals(sizes, covered);
    // The 7-element tensor starts inside a bucket, right after the end of the first tensor.
    BucketPlan.Bucket shared = plan.buckets().get((int) (huge / bucket));
    assertEquals(List.of(new BucketPlan.Segment(0, huge - huge % bucket, (int) (huge % bucket), 0),
        new BucketPlan.Segment(1, 0, 7, (int) (huge % bucket))), shared.segments().subList(0, 2));
  }

  @Test
  void bucketSizesOutsideWhatADirectBufferHoldsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> new GradientBuckets(3));
    assertThrows(IllegalArgumentException.class, () -> new GradientBuckets(1L << 31));
    assertThrows(IllegalArgumentException.class, () -> BucketPlan.of(new long[] {4}, 0));
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
