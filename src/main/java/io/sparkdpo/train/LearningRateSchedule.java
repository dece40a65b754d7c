package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.config.LrSchedulerType;
import io.sparkdpo.config.OptimizationSettings;

/**
 * Learning rate per optimizer step with transformers' formulas ({@code get_linear_schedule_with_warmup},
 * {@code get_cosine_schedule_with_warmup} with half a cycle, {@code get_constant_schedule[_with_warmup]}) and
 * torch's LambdaLR indexing: the update after {@code step} completed updates uses {@code at(step)}, so with
 * warmup the very first update uses rate 0, exactly as the Hugging Face Trainer does. A record, so a checkpoint
 * can store it as JSON and a resume can check it did not change.
 */
public record LearningRateSchedule(
    @JsonProperty("type") LrSchedulerType type,
    @JsonProperty("base_lr") double baseLr,
    @JsonProperty("warmup_steps") long warmupSteps,
    @JsonProperty("total_steps") long totalSteps) {
  public LearningRateSchedule {
    if (!(baseLr >= 0) || warmupSteps < 0 || totalSteps < 1) {
      throw new IllegalArgumentException("need base_lr >= 0, warmup >= 0, total >= 1; got " + baseLr + ", "
          + warmupSteps + ", " + totalSteps);
    }
  }

  /** Warmup from {@code warmup_steps}, else {@code ceil(warmup_ratio * total)} (transformers' rule). */
  public static LearningRateSchedule of(OptimizationSettings s, long totalSteps) {
    long warmup = s.warmupSteps() > 0 ? s.warmupSteps() : (long) Math.ceil(totalSteps * s.warmupRatio());
    return new LearningRateSchedule(s.lrSchedulerType(), s.learningRate(), warmup, totalSteps);
  }

  /** The rate of the update that follows {@code step} completed updates. */
  public double at(long step) {
    return baseLr * factor(step);
  }

  /** The multiplier of the base rate (LambdaLR's lambda). */
  public double factor(long step) {
    if (type == LrSchedulerType.CONSTANT) {
      return 1.0;
    }
    if (step < warmupSteps) {
      return (double) step / (double) Math.max(1, warmupSteps);
    }
    double decaySpan = Math.max(1, totalSteps - warmupSteps);
    return switch (type) {
      case LINEAR -> Math.max(0.0, (double) (totalSteps - step) / decaySpan);
      case COSINE -> Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * ((step - warmupSteps) / decaySpan))));
      case CONSTANT_WITH_WARMUP -> 1.0;
      case CONSTANT -> throw new AssertionError("handled above");
    };
  }
}
