package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.util.ArrayList;
import java.util.List;

/**
 * Gradient accumulation over micro-batches. PyTorch adds every backward pass into the parameters' gradients and
 * DJL's collector never zeroes them, so the sums build up in place with no extra memory: back-propagate each
 * micro-batch's <em>summed</em> loss, {@link #addMicroBatch} its item count (pairs, or target tokens), then
 * {@link #scale} once by {@code 1 / items} (times the world size when an all-reduce will average replicas) and
 * {@link #zero} after the update.
 *
 * <p>{@link #gradients()} wraps each parameter's gradient once per step (DJL allocates a wrapper per
 * {@code getGradient()} call); {@link #zero()} closes the wrappers.
 */
public final class GradientAccumulator implements AutoCloseable {
  private final List<NDArray> params;
  private List<NDArray> wrappers;
  private int microBatches;
  private long items;

  public GradientAccumulator(List<NDArray> params) {
    for (NDArray p : params) {
      if (!p.hasGradient()) {
        throw new IllegalArgumentException("parameter " + p.getName() + " " + p.getShape()
            + " does not require a gradient");
      }
    }
    this.params = List.copyOf(params);
  }

  /** Records that one micro-batch's summed loss was back-propagated, covering {@code count} items. */
  public void addMicroBatch(long count) {
    microBatches++;
    items += count;
  }

  public int microBatches() {
    return microBatches;
  }

  /** Items (pairs or tokens) added since the last {@link #zero()}. */
  public long items() {
    return items;
  }

  /** The accumulated gradients, aliasing the parameters' gradient tensors (in place changes stick). */
  public List<NDArray> gradients() {
    if (wrappers == null) {
      List<NDArray> w = new ArrayList<>(params.size());
      for (NDArray p : params) {
        w.add(p.getGradient());
      }
      wrappers = w;
    }
    return wrappers;
  }

  /** Multiplies every gradient by {@code factor} in place. */
  public void scale(double factor) {
    if (factor == 1.0) {
      return;
    }
    try (GradMode ignored = GradMode.off()) {
      for (NDArray g : gradients()) {
        g.muli(factor);
      }
    }
  }

  /** Sets every gradient to exactly 0 (NaN ones too), in place, and starts a new accumulation. */
  public void zero() {
    // torch's grad.zero_(); NDArray.set(index, Number) would leak a scalar array per call.
    for (NDArray p : params) {
      JniUtils.zeroGrad((PtNDArray) p);
    }
    releaseWrappers();
    microBatches = 0;
    items = 0;
  }

  private void releaseWrappers() {
    if (wrappers != null) {
      wrappers.forEach(NDArray::close);
      wrappers = null;
    }
  }

  @Override
  public void close() {
    releaseWrappers();
  }
}
