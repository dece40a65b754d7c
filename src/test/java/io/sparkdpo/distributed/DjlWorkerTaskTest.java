package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.train.NonFiniteException;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.TrainerStateLog;
import io.sparkdpo.train.TrainingFixtures;
import java.io.UncheckedIOException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which failures of the DJL trainer task a resubmission could cure (retryable) and which it could not. */
class DjlWorkerTaskTest {
  private static final JobConfig CFG = TrainingFixtures.config();
  private static final DjlWorkerTask TASK =
      new DjlWorkerTask(SessionSpec.dpo(CFG.model(), CFG.train(), "builtin:tiny", 3, 4));

  @Test
  void aSpecThatDoesNotParseIsNotRetried() {
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
        () -> SessionSpec.fromJson("{\"stage\": \"dpo\", \"model\": 7}"));
    assertTrue(bad.getMessage().startsWith("not a session spec: "), bad.getMessage());
    assertFalse(TASK.retryable(new RuntimeException("rank 1 failed", bad)), "a bad spec fails the same way again");
  }

  @Test
  void nonFiniteLossesAreNotRetriedButIoFaultsAre() {
    assertFalse(TASK.retryable(new NonFiniteException(3, "loss", Double.NaN, List.of("p1"))));
    assertTrue(TASK.retryable(new UncheckedIOException(new java.io.IOException("connection reset"))));
  }

  private static WorkerContext context(TrainingSchedule schedule) {
    return new WorkerContext(0, 1, 1, "run", "file:/runs/x", List.of(), List.of(), "cpu",
        io.sparkdpo.io.Storage.local(), new LocalAllReduce(), new RecordingChannel(), null, schedule, null);
  }

  /** trainer_state.json's arguments: the run's settings under transformers' names, its epoch count as the Trainer's. */
  @Test
  void theTrainerStateRecordsTheRunsSettingsAsTransformersDoes() {
    TrainingSchedule schedule = new TrainingSchedule(30, 10, 0, 500, 100);
    JobConfig epochs = TrainingFixtures.config("train.num_train_epochs=2.5");
    TrainerStateLog.Arguments a = new DjlWorkerTask(SessionSpec.dpo(epochs.model(), epochs.train(), "builtin:tiny",
        30, 100)).trainerArguments(context(schedule));
    assertEquals(new TrainerStateLog.Arguments(10, 0, 500, 30, 8, 3, "loss", null, "runs/dpo"), a,
        "ceil(num_train_epochs); metric_for_best_model loss by default");
    // With max_steps: the epochs its steps reach into, 30 steps x 8 of 100 pairs = 2.4 -> 3.
    JobConfig steps = TrainingFixtures.config("train.max_steps=30", "train.metric_for_best_model=rewards/accuracies",
        "train.greater_is_better=true");
    assertEquals(new TrainerStateLog.Arguments(10, 0, 500, 30, 8, 3, "rewards/accuracies", true, "runs/dpo"),
        new DjlWorkerTask(SessionSpec.dpo(steps.model(), steps.train(), "builtin:tiny", 30, 100))
            .trainerArguments(context(schedule)));
    assertEquals(2, new DjlWorkerTask(SessionSpec.dpo(steps.model(), steps.train(), "builtin:tiny", 30, 120))
        .trainerArguments(context(schedule)).numTrainEpochs(), "exactly 2 epochs: 240 of 120 pairs");
  }
}
