package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * The update half of a training step, identical on every replica: scale the accumulated gradient sums to a
 * global-batch mean, refuse non-finite gradients (before the all-reduce, so the replica that went wrong is the
 * one that reports), average across replicas in fixed-size buckets ({@link GradientBuckets}), clip by global norm,
 * take the scheduled rate, apply AdamW, zero the gradients. The clipping norm is the reduced gradient's
 * {@link SquareSum} (float64, fixed order, summed from the buckets as they come back from the all-reduce), so it is
 * the same bits on every replica whatever its CPU, device or thread count.
 *
 * <p>With float16 loss scaling ({@link LossScaler#dynamic()}) the gradients are also divided by the loss scale, and
 * non-finite ones skip the update instead of failing the run. They are checked after the all-reduce, where every
 * replica holds the same sums (an inf or NaN on one replica reaches all), so all replicas skip together.
 */
public final class OptimizerStep {
  private final AdamW optimizer;
  private final LearningRateSchedule schedule;
  private final double maxGradNorm;
  private final GradientReducer reducer;
  private final GradientBuckets buckets;
  private final LossScaler scaler;

  /** With all-reduce buckets of {@link GradientBuckets#DEFAULT_BUCKET_BYTES}. */
  public OptimizerStep(AdamW optimizer, LearningRateSchedule schedule, double maxGradNorm, GradientReducer reducer) {
    this(optimizer, schedule, maxGradNorm, reducer, GradientBuckets.DEFAULT_BUCKET_BYTES);
  }

  /** @param bucketBytes capacity of one all-reduce bucket ({@code allreduce_bucket_mb}) */
  public OptimizerStep(AdamW optimizer, LearningRateSchedule schedule, double maxGradNorm, GradientReducer reducer,
      long bucketBytes) {
    this(optimizer, schedule, maxGradNorm, reducer, bucketBytes, LossScaler.off());
  }

  /** @param scaler the loss scaler whose factor the gradients carry ({@link LossScaler#off()} without float16) */
  public OptimizerStep(AdamW optimizer, LearningRateSchedule schedule, double maxGradNorm, GradientReducer reducer,
      long bucketBytes, LossScaler scaler) {
    this.scaler = scaler;
    this.optimizer = optimizer;
    this.schedule = schedule;
    this.maxGradNorm = maxGradNorm;
    this.reducer = reducer;
    this.buckets = new GradientBuckets(bucketBytes);
  }

  /**
   * What one update did, for the metrics.
   *
   * @param allReducedBytes gradient bytes this replica all-reduced (0 for a single replica)
   * @param skipped the gradients were not finite under float16 loss scaling: no update was applied
   */
  public record Result(long step, double gradNorm, double learningRate, long allReducedBytes, boolean skipped) {}

  /**
   * @param step updates completed before this one (0 for the first; also the schedule's index)
   * @param globalItems pairs (DPO) or target tokens (SFT) of the global batch, over all replicas and micro-batches
   * @param pairIds the pairs of this replica's batch, named if the step is refused
   * @throws NonFiniteException if a gradient is NaN or infinite; parameters and optimizer state are unchanged
   */
  public Result apply(long step, GradientAccumulator accumulator, long globalItems, List<String> pairIds) {
    if (globalItems <= 0) {
      throw new IllegalArgumentException("the global batch has no items");
    }
    try {
      // Replicas sum their own items; the all-reduce averages over replicas, hence the world size. The loss scale
      // (a power of two, 1 without float16) comes off in the same multiply, exactly.
      accumulator.scale((double) reducer.worldSize() / globalItems / scaler.scale());
      List<NDArray> grads = accumulator.gradients();
      long reduced = 0;
      double norm;
      if (reducer.worldSize() > 1) {
        if (!scaler.isDynamic()) {
          NonFiniteException.requireFinite(step, "gradient", GlobalNormClip.deviceNorm(grads), pairIds);
        }
        SquareSum squares = new SquareSum();
        reduced = buckets.allReduceMean(grads, reducer, squares);
        norm = squares.norm();
      } else {
        norm = SquareSum.normOf(grads);
      }
      GlobalNormClip.scale(grads, norm, maxGradNorm);
      double lr = schedule.at(step);
      if (scaler.isDynamic()) {
        scaler.update(Double.isFinite(norm));
        if (!Double.isFinite(norm)) {
          return new Result(step, norm, lr, reduced, true);
        }
      }
      NonFiniteException.requireFinite(step, "gradient", norm, pairIds);
      // Skipped float16 steps leave the optimizer's count behind the loop's (torch's AdamW counts its own updates).
      long skipped = scaler.skippedSteps();
      if (optimizer.stepCount() != step - skipped) {
        throw new IllegalStateException("the optimizer has taken " + optimizer.stepCount()
            + " steps but this is step " + step + (skipped > 0 ? " with " + skipped + " skipped by float16 loss "
            + "scaling" : "") + ": state and loop are out of sync");
      }
      optimizer.step(grads, lr);
      return new Result(step, norm, lr, reduced, false);
    } finally {
      accumulator.zero();
    }
  }
}
