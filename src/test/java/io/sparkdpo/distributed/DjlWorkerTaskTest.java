package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.train.NonFiniteException;
import io.sparkdpo.train.SessionSpec;
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
}
