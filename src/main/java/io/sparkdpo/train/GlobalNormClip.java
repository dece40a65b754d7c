package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import java.util.List;

/**
 * Clipping by the L2 norm of all gradients taken together, as {@code torch.nn.utils.clip_grad_norm_} does (DJL's
 * own clipping only clamps elements from above). Scales in place, on the gradients' device.
 *
 * <p>The norm that decides the clipping is {@link SquareSum}'s: float64, summed on the host in a fixed order, so
 * replicas on different CPUs (libtorch's vectorised norm rounds differently with and without AVX-512) or devices
 * scale by the same bits and cannot drift apart. {@link #deviceNorm} is libtorch's float32 norm, for quick checks.
 */
public final class GlobalNormClip {
  private GlobalNormClip() {}

  /**
   * libtorch's norm of the per-tensor norms, in float32 on the gradients' device, one host sync. Its last bits depend
   * on the CPU's kernels: use it to check finiteness, never to decide what every replica does.
   */
  public static double deviceNorm(List<NDArray> grads) {
    if (grads.isEmpty()) {
      return 0;
    }
    NDList norms = new NDList(grads.size());
    try {
      for (NDArray g : grads) {
        norms.add(g.norm());
      }
      try (NDArray stacked = NDArrays.stack(norms); NDArray total = stacked.norm()) {
        return total.getFloat();
      }
    } finally {
      norms.close();
    }
  }

  /** {@link #scale} by the gradients' {@link SquareSum#normOf} norm; returns that norm. */
  public static double clip(List<NDArray> grads, double maxNorm) {
    double total = SquareSum.normOf(grads);
    scale(grads, total, maxNorm);
    return total;
  }

  /**
   * Scales every gradient by {@code min(1, maxNorm / (norm + 1e-6))} when {@code maxNorm > 0}, in float32 as torch
   * does (element by element: the same bits on any number of threads). A non-finite norm leaves the gradients
   * alone: the caller refuses the step.
   *
   * @param norm the gradients' norm before clipping (what Hugging Face logs as {@code grad_norm})
   */
  public static void scale(List<NDArray> grads, double norm, double maxNorm) {
    if (maxNorm <= 0 || !Double.isFinite(norm)) {
      return;
    }
    float coef = (float) maxNorm / ((float) norm + 1e-6f);
    if (coef < 1f) {
      try (GradMode ignored = GradMode.off()) {
        for (NDArray g : grads) {
          g.muli(coef);
        }
      }
    }
  }
}
