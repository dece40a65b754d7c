package io.sparkdpo.distributed;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.train.GradientBuckets;
import io.sparkdpo.train.GradientReducer;
import java.nio.FloatBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Time of the bucketed gradient all-reduce (copy out, ring all-reduce, copy back) for the gradients of the ~31.6M
 * Llama of {@link TrainingStepCommunicationBench} (126 MB), W = 2 in one JVM over loopback, per bucket size; the
 * largest bucket holds everything (one all-reduce, as before buckets). Prints a table for docs/benchmarks.md.
 *
 * <p>Run: {@code mvn -B -o -Pbench test -Dtest=GradientBucketsBench}
 */
@Tag("bench")
class GradientBucketsBench {
  private static final int ROUNDS = Integer.getInteger("bench.rounds", 7);

  /** hidden 512, 10 layers, 8 heads (4 kv, head 64), SwiGLU 1408, vocab 4096 tied. */
  private static List<Shape> shapes() {
    List<Shape> s = new ArrayList<>(List.of(new Shape(4096, 512)));
    for (int layer = 0; layer < 10; layer++) {
      s.addAll(List.of(new Shape(512), new Shape(512, 512), new Shape(256, 512), new Shape(256, 512),
          new Shape(512, 512), new Shape(512), new Shape(1408, 512), new Shape(1408, 512), new Shape(512, 1408)));
    }
    s.add(new Shape(512));
    return s;
  }

  @Test
  @Timeout(value = 10, unit = TimeUnit.MINUTES)
  void bucketSizes() throws Exception {
    RingOptions options = RingOptions.defaults().withIoTimeout(Duration.ofSeconds(60));
    StringBuilder table = new StringBuilder("| bucket | buckets | median ms | min ms |\n|---|---|---|---|\n");
    long total = shapes().stream().mapToLong(Shape::size).sum();
    for (long bucket : new long[] {1L << 20, 25L << 20, 4 * total}) {
      try (InProcessRing ring = InProcessRing.connect(2, options)) {
        List<long[]> times = ring.onEveryRank(group -> {
          try (NDManager m = NDManager.newBaseManager()) {
            List<NDArray> grads = new ArrayList<>();
            for (Shape shape : shapes()) {
              grads.add(m.randomNormal(shape));
            }
            GradientReducer reducer = new GradientReducer() {
              @Override
              public int worldSize() {
                return 2;
              }

              @Override
              public void allReduceMean(FloatBuffer direct) {
                group.allReduceMean(direct);
              }
            };
            GradientBuckets buckets = new GradientBuckets(bucket);
            long[] nanos = new long[ROUNDS];
            for (int r = 0; r < ROUNDS; r++) {
              group.barrier();
              long t = System.nanoTime();
              buckets.allReduceMean(grads, reducer);
              nanos[r] = System.nanoTime() - t;
            }
            return nanos;
          }
        });
        long[] t = times.get(0);
        Arrays.sort(t);
        table.append(String.format(Locale.ROOT, "| %s | %d | %.0f | %.0f |%n",
            bucket >= 4 * total ? "whole model (" + (4 * total >> 20) + " MiB)" : (bucket >> 20) + " MiB",
            (4 * total + bucket - 1) / bucket, t[t.length / 2] / 1e6, t[0] / 1e6));
      }
    }
    System.out.println("gradients: " + total + " floats (" + (4 * total) + " bytes), W = 2 in one JVM\n" + table);
  }
}
