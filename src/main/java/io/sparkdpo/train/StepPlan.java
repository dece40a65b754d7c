package io.sparkdpo.train;

import io.sparkdpo.config.OptimizationSettings;

/**
 * How long a run is and when it logs, evaluates and saves, in optimizer steps. Each step consumes
 * {@code per_device_train_batch_size * gradient_accumulation_steps} pairs per replica; the shard order rolls
 * over epoch ends (see {@link ShardSampler}), so there are {@code ceil(num_train_epochs * pairs / pairsPerStep)}
 * steps unless {@code max_steps} is positive. Decisions follow the Hugging Face Trainer: after step s (1-based)
 * when s is a multiple of the interval, and always after the last step.
 */
public record StepPlan(long totalSteps, long pairsPerStep, long pairsPerWorker, int loggingSteps, int evalSteps,
                       int saveSteps) {

  /** @param pairsPerWorker pairs in one replica's shard */
  public static StepPlan of(OptimizationSettings s, long pairsPerWorker) {
    if (pairsPerWorker <= 0) {
      throw new IllegalArgumentException("a replica's shard holds no pairs");
    }
    long perStep = (long) s.perDeviceTrainBatchSize() * s.gradientAccumulationSteps();
    long total = s.maxSteps() > 0 ? s.maxSteps()
        : Math.max(1, (long) Math.ceil(s.numTrainEpochs() * pairsPerWorker / perStep));
    return new StepPlan(total, perStep, pairsPerWorker, s.loggingSteps(), s.evalSteps(), s.saveSteps());
  }

  /** Fractional epoch after {@code stepsDone} steps (the {@code epoch} metric). */
  public double epochAt(long stepsDone) {
    return (double) stepsDone * pairsPerStep / pairsPerWorker;
  }

  public boolean logAfter(long stepsDone) {
    return stepsDone % loggingSteps == 0 || stepsDone == totalSteps;
  }

  public boolean evaluateAfter(long stepsDone) {
    return (evalSteps > 0 && stepsDone % evalSteps == 0) || stepsDone == totalSteps;
  }

  public boolean saveAfter(long stepsDone) {
    return (saveSteps > 0 && stepsDone % saveSteps == 0) || stepsDone == totalSteps;
  }
}
