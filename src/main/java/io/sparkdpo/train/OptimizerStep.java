package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * The update half of a training step, identical on every replica: scale the accumulated gradient sums to a
 * global-batch mean, refuse non-finite gradients (before the all-reduce, so the replica that went wrong is the
 * one that reports), average across replicas in fixed-size buckets ({@link GradientBuckets}), clip by global norm,
 * take the scheduled rate, apply AdamW, zero the gradients.
 */
public final class OptimizerStep {
  private final AdamW optimizer;
  private final LearningRateSchedule schedule;
  private final double maxGradNorm;
  private final GradientReducer reducer;
  private final GradientBuckets buckets;

  /** With all-reduce buckets of {@link GradientBuckets#DEFAULT_BUCKET_BYTES}. */
  public OptimizerStep(AdamW optimizer, LearningRateSchedule schedule, double maxGradNorm, GradientReducer reducer) {
    this(optimizer, schedule, maxGradNorm, reducer, GradientBuckets.DEFAULT_BUCKET_BYTES);
  }

  /** @param bucketBytes capacity of one all-reduce bucket ({@code allreduce_bucket_mb}) */
  public OptimizerStep(AdamW optimizer, LearningRateSchedule schedule, double maxGradNorm, GradientReducer reducer,
      long bucketBytes) {
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
   */
  public record Result(long step, double gradNorm, double learningRate, long allReducedBytes) {}

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
      // Replicas sum their own items; the all-reduce averages over replicas, hence the world size.
      accumulator.scale((double) reducer.worldSize() / globalItems);
      List<NDArray> grads = accumulator.gradients();
      long reduced = 0;
      if (reducer.worldSize() > 1) {
        NonFiniteException.requireFinite(step, "gradient", GlobalNormClip.norm(grads), pairIds);
        reduced = buckets.allReduceMean(grads, reducer);
      }
      double norm = GlobalNormClip.clip(grads, maxGradNorm);
      NonFiniteException.requireFinite(step, "gradient", norm, pairIds);
      if (optimizer.stepCount() != step) {
        throw new IllegalStateException("the optimizer has taken " + optimizer.stepCount()
            + " steps but this is step " + step + ": state and loop are out of sync");
      }
      double lr = schedule.at(step);
      optimizer.step(grads, lr);
      return new Result(step, norm, lr, reduced);
    } finally {
      accumulator.zero();
    }
  }
}
