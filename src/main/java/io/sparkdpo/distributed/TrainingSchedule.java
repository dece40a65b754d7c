package io.sparkdpo.distributed;

import io.sparkdpo.train.StepPlan;
import java.io.Serializable;

/**
 * When a distributed run logs, evaluates, checks replicas and saves, in optimizer steps (1-based: "after step
 * s"). Follows {@link StepPlan}'s Hugging Face rules and adds the replica checksum, which also runs before every
 * save (a checkpoint is only written from replicas shown identical) and after the last step.
 *
 * @param checksumSteps compare parameter checksums every this many steps; 0: only before saves and at the end
 */
public record TrainingSchedule(long totalSteps, int loggingSteps, int evalSteps, int saveSteps, int checksumSteps)
    implements Serializable {

  public TrainingSchedule {
    if (totalSteps < 1 || loggingSteps < 1 || evalSteps < 0 || saveSteps < 0 || checksumSteps < 0) {
      throw new IllegalArgumentException("invalid schedule: total " + totalSteps + ", logging " + loggingSteps
          + ", eval " + evalSteps + ", save " + saveSteps + ", checksum " + checksumSteps);
    }
  }

  public static TrainingSchedule of(StepPlan plan, int checksumSteps) {
    return new TrainingSchedule(plan.totalSteps(), plan.loggingSteps(), plan.evalSteps(), plan.saveSteps(),
        checksumSteps);
  }

  public boolean logAfter(long step) {
    return rules().logAfter(step);
  }

  public boolean evaluateAfter(long step) {
    return rules().evaluateAfter(step);
  }

  public boolean saveAfter(long step) {
    return rules().saveAfter(step);
  }

  public boolean checksumAfter(long step) {
    return (checksumSteps > 0 && step % checksumSteps == 0) || saveAfter(step);
  }

  /** The training core's decisions; pair counts do not enter them. */
  private StepPlan rules() {
    return new StepPlan(totalSteps, 1, 1, loggingSteps, evalSteps, saveSteps);
  }
}
