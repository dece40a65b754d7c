package io.sparkdpo.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Both gradient norms of seeded gradient sets, as raw bits: libtorch's ({@link GlobalNormClip#deviceNorm}) and
 * {@link SquareSum#normOf}. Run in-process and, with other CPU kernels and thread counts, as a child JVM
 * ({@code main}): what one replica and another on a different executor would compute.
 */
public final class NormProbe {
  static final int SETS = 20;

  private NormProbe() {}

  /** One line per set: {@code set deviceNormBits squareSumBits}. */
  static List<String> probe() {
    List<String> lines = new ArrayList<>();
    for (int set = 1; set <= SETS; set++) {
      try (NDManager m = NDManager.newBaseManager()) {
        Random random = new Random(set);
        List<NDArray> grads = new ArrayList<>();
        for (int k = 0; k < 12; k++) {
          Shape shape = new Shape(37 + 101 * k, 3 + k % 5); // odd sizes: vector bodies and scalar tails
          float[] v = new float[(int) shape.size()];
          for (int i = 0; i < v.length; i++) {
            v[i] = (float) (random.nextGaussian() * Math.exp(random.nextGaussian() * 3)); // a wide dynamic range
          }
          grads.add(m.create(v, shape));
        }
        lines.add(set + " " + Long.toHexString(Double.doubleToRawLongBits(GlobalNormClip.deviceNorm(grads))) + " "
            + Long.toHexString(Double.doubleToRawLongBits(SquareSum.normOf(grads))));
      }
    }
    return lines;
  }

  /** {@code args[0]}: libtorch intra-op threads. Prints {@code probe <line>} per set. */
  public static void main(String[] args) {
    Engine.getEngine("PyTorch"); // loads libtorch before its thread setting is touched
    JniUtils.setNumThreads(Integer.parseInt(args[0]));
    for (String line : probe()) {
      System.out.println("probe " + line);
    }
    System.out.println("kernels " + System.getenv("ATEN_CPU_CAPABILITY") + " threads " + JniUtils.getNumThreads());
  }
}
