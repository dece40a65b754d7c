package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import java.util.List;

/**
 * Clipping by the L2 norm of all gradients taken together, as {@code torch.nn.utils.clip_grad_norm_} does (DJL's
 * own clipping only clamps elements from above). Scales in place, on the gradients' device.
 */
public final class GlobalNormClip {
  private GlobalNormClip() {}

  /** The L2 norm of all gradients viewed as one vector: norm of the per-tensor norms, one host sync. */
  public static double norm(List<NDArray> grads) {
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

  /**
   * Scales every gradient by {@code min(1, maxNorm / (norm + 1e-6))} when {@code maxNorm > 0}, in float32 as
   * torch does, and returns the norm before clipping (what Hugging Face logs as {@code grad_norm}). A non-finite
   * norm is returned without touching the gradients: the caller refuses the step.
   */
  public static double clip(List<NDArray> grads, double maxNorm) {
    double total = norm(grads);
    if (maxNorm <= 0 || !Double.isFinite(total)) {
      return total;
    }
    float coef = (float) maxNorm / ((float) total + 1e-6f);
    if (coef < 1f) {
      try (GradMode ignored = GradMode.off()) {
        for (NDArray g : grads) {
          g.muli(coef);
        }
      }
    }
    return total;
  }
}
