package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.train.GradientBuckets;
import io.sparkdpo.train.GradientReducer;
import io.sparkdpo.train.SquareSum;
import java.nio.FloatBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Gradients averaged bucket by bucket over a real (in-process) TCP ring equal the one-buffer average. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class BucketedGradientAllReduceTest {
  private static final RingOptions RING = RingOptions.defaults().withChunkBytes(4096)
      .withIoTimeout(Duration.ofSeconds(20)).withConnectTimeout(Duration.ofSeconds(20));
  private static final Shape[] SHAPES = {new Shape(37, 29), new Shape(1000), new Shape(3, 5, 7), new Shape(2048),
      new Shape(1), new Shape(64, 33)};
  /** 256 bytes: 64 floats, smaller than every tensor here but two. */
  private static final long SMALL_BUCKET = 256;
  /** Larger than all the gradients together: one all-reduce, as before buckets. */
  private static final long ONE_BUFFER = 1 << 20;

  /** Rank {@code rank}'s gradients, seeded, different on every rank. */
  private static float[] values(int rank, int tensor, int n) {
    Random random = new Random(1000L * rank + tensor);
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) random.nextGaussian() * (1 + tensor);
    }
    return out;
  }

  /** Every rank's gradients after the bucketed all-reduce, concatenated, indexed by rank. */
  private static List<float[]> reduce(int world, long bucketBytes) throws Exception {
    try (InProcessRing ring = InProcessRing.connect(world, RING)) {
      return ring.onEveryRank(group -> {
        try (NDManager m = NDManager.newBaseManager()) {
          List<NDArray> grads = new ArrayList<>();
          for (int t = 0; t < SHAPES.length; t++) {
            grads.add(m.create(values(group.rank(), t, (int) SHAPES[t].size()), SHAPES[t]));
          }
          GradientReducer reducer = new GradientReducer() {
            @Override
            public int worldSize() {
              return group.worldSize();
            }

            @Override
            public void allReduceMean(FloatBuffer direct) {
              group.allReduceMean(direct);
            }
          };
          long bytes = new GradientBuckets(bucketBytes).allReduceMean(grads, reducer);
          assertEquals(total() * Float.BYTES, bytes);
          FloatBuffer all = FloatBuffer.allocate(total());
          for (NDArray g : grads) {
            all.put(g.toFloatArray());
          }
          return all.array();
        }
      });
    }
  }

  private static int total() {
    int n = 0;
    for (Shape s : SHAPES) {
      n += (int) s.size();
    }
    return n;
  }

  @Test
  void twoRanksWithBucketsSmallerThanATensorGetTheBitsOfTheOneBufferAverage() throws Exception {
    List<float[]> bucketed = reduce(2, SMALL_BUCKET);
    List<float[]> whole = reduce(2, ONE_BUFFER);
    assertArrayEquals(whole.get(0), bucketed.get(0), 0f, "bucketed = one buffer, bit for bit");
    assertArrayEquals(bucketed.get(0), bucketed.get(1), 0f, "both ranks hold the same bits");
    // And it is the mean: (a + b) / 2 in float, whichever rank adds.
    int i = 0;
    for (int t = 0; t < SHAPES.length; t++) {
      float[] a = values(0, t, (int) SHAPES[t].size());
      float[] b = values(1, t, (int) SHAPES[t].size());
      for (int k = 0; k < a.length; k++, i++) {
        assertEquals(Float.floatToRawIntBits((a[k] + b[k]) / 2), Float.floatToRawIntBits(bucketed.get(0)[i]),
            "tensor " + t + " element " + k);
      }
    }
  }

  @Test
  void threeRanksAgreeBitwiseAndBucketsOnlyReorderTheAdditions() throws Exception {
    List<float[]> bucketed = reduce(3, SMALL_BUCKET);
    List<float[]> whole = reduce(3, ONE_BUFFER);
    assertArrayEquals(bucketed.get(0), bucketed.get(1), 0f);
    assertArrayEquals(bucketed.get(0), bucketed.get(2), 0f);
    // With three addends the rank that completes a sum depends on where an element falls: the rounding of the
    // additions may differ, by at most a couple of ulps of the largest addend.
    double worst = 0;
    int i = 0;
    for (int t = 0; t < SHAPES.length; t++) {
      int n = (int) SHAPES[t].size();
      float[][] addends = {values(0, t, n), values(1, t, n), values(2, t, n)};
      for (int k = 0; k < n; k++, i++) {
        float largest = Math.max(Math.abs(addends[0][k]), Math.max(Math.abs(addends[1][k]), Math.abs(addends[2][k])));
        worst = Math.max(worst, Math.abs(bucketed.get(0)[i] - whole.get(0)[i]) / Math.ulp(largest));
      }
    }
    assertTrue(worst <= 2, "largest difference in ulps of the largest addend: " + worst);
  }

  /**
   * The clipping norm, summed from the buckets as they come back from the all-reduce, is the same bits on every
   * rank, and the bits of {@link SquareSum#normOf} of the reduced gradients, whatever the bucket size.
   */
  @Test
  void everyRankGetsTheSameNormOfTheReducedGradientFromItsBuckets() throws Exception {
    for (long bucketBytes : new long[] {SMALL_BUCKET, 4 * 777, ONE_BUFFER}) {
      try (InProcessRing ring = InProcessRing.connect(3, RING)) {
        List<long[]> bits = ring.onEveryRank(group -> {
          try (NDManager m = NDManager.newBaseManager()) {
            List<NDArray> grads = new ArrayList<>();
            for (int t = 0; t < SHAPES.length; t++) {
              grads.add(m.create(values(group.rank(), t, (int) SHAPES[t].size()), SHAPES[t]));
            }
            GradientReducer reducer = new GradientReducer() {
              @Override
              public int worldSize() {
                return group.worldSize();
              }

              @Override
              public void allReduceMean(FloatBuffer direct) {
                group.allReduceMean(direct);
              }
            };
            SquareSum squares = new SquareSum();
            new GradientBuckets(bucketBytes).allReduceMean(grads, reducer, squares);
            assertEquals(total(), squares.count());
            return new long[] {Double.doubleToRawLongBits(squares.norm()),
                Double.doubleToRawLongBits(SquareSum.normOf(grads))};
          }
        });
        for (int r = 0; r < 3; r++) {
          assertEquals(bits.get(0)[0], bits.get(r)[0], "rank " + r + ", buckets of " + bucketBytes + " bytes");
          assertEquals(bits.get(r)[1], bits.get(r)[0], "rank " + r + ": buckets' sum = the reduced gradients' norm");
        }
      }
    }
  }
}
