package io.sparkdpo.distributed;

import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.TrainerStateLog;
import java.io.Serializable;
import java.util.Optional;

/**
 * What one barrier task of a distributed training stage runs, apart from the machinery around it: it builds this
 * rank's {@link Replica} of the model, and {@link WorkerLoop} drives it step by step (all-reduce inside
 * {@link Replica#trainStep}, metrics to the driver, checksums across replicas, checkpoints by rank 0, fault
 * injection). Serialised into the Spark task, so implementations carry their settings as serialisable fields
 * (a YAML string of the job config, say) and load heavy things (model, data) in {@link #start}.
 */
public interface WorkerTask extends Serializable {

  /**
   * Builds this rank's replica, positioned after {@code resume}'s step when a checkpoint is given (every rank
   * gets the same one, chosen by rank 0), else at step 0 with the initial parameters. Every rank must end up
   * with bitwise identical parameters: {@link WorkerLoop} compares their checksums before the first step.
   *
   * @param context this rank, its connected all-reduce group, its shards, device and storage
   */
  Replica start(WorkerContext context, Optional<Checkpoint> resume) throws Exception;

  /**
   * The Trainer arguments a checkpoint's {@code trainer_state.json} records. The default knows the schedule only (no
   * batch size, no epochs, no best metric); the DJL trainer fills in its settings.
   */
  default TrainerStateLog.Arguments trainerArguments(WorkerContext context) {
    TrainingSchedule s = context.schedule();
    return new TrainerStateLog.Arguments(s.loggingSteps(), s.evalSteps(), s.saveSteps(), s.totalSteps(), null, 0, null,
        null, context.runDir());
  }

  /**
   * True when every rank needs an executor JVM of its own. DJL allows one open {@code GradientCollector} per
   * JVM, so the DJL trainer says true; the runner then refuses placements that could put two ranks in one JVM,
   * and the rendezvous checks the executors the ranks actually landed in.
   */
  default boolean needsOwnJvm() {
    return true;
  }

  /**
   * Whether resubmitting the stage from the latest checkpoint can help after {@code failure}. Lost executors,
   * dropped connections and I/O errors can; deterministic failures (diverged replicas, non-finite gradients,
   * bad data) would fail again at the same step, and a task fenced out of the run folder
   * ({@link io.sparkdpo.io.FolderLease.LeaseException}) must not write again. The default refuses retries for
   * those two only.
   */
  default boolean retryable(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof NonRetryableTrainingException || t instanceof io.sparkdpo.io.FolderLease.LeaseException) {
        return false;
      }
      if (t.getCause() == t) {
        break;
      }
    }
    return true;
  }
}
