package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class SquareSumTest {
  private static final int N = 10_007;

  private static float[] values(long seed) {
    Random random = new Random(seed);
    float[] v = new float[N];
    for (int i = 0; i < N; i++) {
      v[i] = (float) (random.nextGaussian() * Math.exp(random.nextGaussian() * 4));
    }
    return v;
  }

  private static long bits(double d) {
    return Double.doubleToRawLongBits(d);
  }

  /** How the elements arrive (one buffer, ragged chunks, tensors of any shape, buckets of any size) is invisible. */
  @Test
  void theSumDependsOnlyOnTheElementsInTheirOrder() {
    float[] v = values(7);
    SquareSum whole = new SquareSum();
    whole.add(FloatBuffer.wrap(v));
    long expected = bits(whole.norm());

    Random chunks = new Random(3);
    SquareSum ragged = new SquareSum();
    for (int off = 0; off < N; ) {
      int len = Math.min(N - off, 1 + chunks.nextInt(9));
      ragged.add(FloatBuffer.wrap(v, off, len));
      off += len;
    }
    assertEquals(N, ragged.count());
    assertEquals(expected, bits(ragged.norm()), "ragged chunks");

    try (NDManager m = NDManager.newBaseManager()) {
      List<NDArray> grads = List.of(m.create(slice(v, 0, 3 * 37), new Shape(3, 37)),
          m.create(slice(v, 111, 1), new Shape(1)), m.create(slice(v, 112, N - 112), new Shape(N - 112)));
      assertEquals(expected, bits(SquareSum.normOf(grads)), "three tensors");
      for (long bucketBytes : new long[] {4, 20, 4 * 1001, 1 << 20}) {
        SquareSum buckets = new SquareSum();
        new GradientBuckets(bucketBytes).allReduceMean(grads, IDENTITY_OF_TWO, buckets);
        assertEquals(expected, bits(buckets.norm()), "buckets of " + bucketBytes + " bytes");
      }
    }
  }

  @Test
  void isTheExactSumOfSquaresToFloat64RoundingAndKeepsNonFiniteValues() {
    float[] v = values(11);
    SquareSum sum = new SquareSum();
    sum.add(FloatBuffer.wrap(v));
    BigDecimal exact = BigDecimal.ZERO;
    for (float x : v) {
      exact = exact.add(new BigDecimal(x).pow(2));
    }
    double relative = Math.abs(sum.sum() - exact.doubleValue()) / exact.doubleValue();
    assertTrue(relative < N * 0x1p-53, "relative error " + relative);
    assertEquals(exact.sqrt(MathContext.DECIMAL64).doubleValue(), sum.norm(), sum.norm() * 1e-15);

    SquareSum big = new SquareSum();
    big.add(FloatBuffer.wrap(new float[] {Float.MAX_VALUE, Float.MAX_VALUE}));
    assertEquals(Math.sqrt(2) * Float.MAX_VALUE, big.norm(), 1e25, "no float32 overflow");
    SquareSum nan = new SquareSum();
    nan.add(FloatBuffer.wrap(new float[] {1f, Float.NaN, 2f}));
    assertTrue(Double.isNaN(nan.norm()));
    SquareSum inf = new SquareSum();
    inf.add(FloatBuffer.wrap(new float[] {1f, 2f, 3f, 4f, Float.NEGATIVE_INFINITY}));
    assertEquals(Double.POSITIVE_INFINITY, inf.norm());
  }

  /**
   * What made replicas drift: libtorch's float32 norm rounds differently with its generic kernels than with the
   * AVX-512 ones this machine picks (and a GPU rounds differently again), so two executors could clip the same
   * all-reduced gradient by different factors. A child JVM with the generic kernels and one thread against this one
   * (native kernels, two threads): the old norm differs on some of the 20 gradient sets, the new one on none.
   */
  @Test
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void theNormIsTheSameBitsWithOtherCpuKernelsAndThreadCounts() throws Exception {
    Engine.getEngine("PyTorch"); // loads libtorch before its thread setting is touched
    int threads = JniUtils.getNumThreads();
    List<String> here;
    try {
      JniUtils.setNumThreads(2);
      here = NormProbe.probe();
    } finally {
      JniUtils.setNumThreads(threads);
    }
    List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx512m",
        "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"), NormProbe.class.getName(), "1");
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
    pb.environment().put("ATEN_CPU_CAPABILITY", "default");
    Process p = pb.start();
    List<String> there = new ArrayList<>();
    List<String> output = new ArrayList<>();
    try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = out.readLine(); line != null; line = out.readLine()) {
        output.add(line);
        if (line.startsWith("probe ")) {
          there.add(line.substring(6));
        }
      }
    }
    assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, String.join("\n", output));
    assertEquals(NormProbe.SETS, there.size(), String.join("\n", output));
    int oldDiffers = 0;
    for (int i = 0; i < NormProbe.SETS; i++) {
      String[] a = here.get(i).split(" ");
      String[] b = there.get(i).split(" ");
      assertEquals(a[2], b[2], "set " + a[0] + ": the new norm, native kernels / 2 threads vs generic / 1");
      if (!a[1].equals(b[1])) {
        oldDiffers++;
      }
    }
    // This machine's CPU has AVX-512, so the generic kernels are other kernels: the old norm must show it.
    assertNotEquals(0, oldDiffers, "libtorch's norm gave the same bits with both kernels on every set");
  }

  private static float[] slice(float[] v, int from, int length) {
    float[] out = new float[length];
    System.arraycopy(v, from, out, 0, length);
    return out;
  }

  /** Claims two replicas and leaves the buffer as it is: the buckets' plumbing without a ring. */
  private static final GradientReducer IDENTITY_OF_TWO = new GradientReducer() {
    @Override
    public int worldSize() {
      return 2;
    }

    @Override
    public void allReduceMean(FloatBuffer direct) {
      // every replica holds the same gradient: its mean is itself
    }
  };
}
