package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.Storage;
import io.sparkdpo.train.SessionSpec;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code RUN/run.json}: what may change when a run resumes and what may not. */
class RunFileTest {
  @TempDir
  Path tmp;

  private static SessionSpec dpo(String... overrides) {
    JobConfig cfg = ConfigLoader.load(null, List.of(overrides));
    return SessionSpec.dpo(cfg.model(), cfg.train(), cfg.model().path(), 10, 100);
  }

  @Test
  void gradientCheckpointingMayChangeOnAResumeButTheLossMayNot() {
    Storage storage = Storage.local();
    String run = tmp.resolve("run").toString();
    TrainingStage.requireSameRun(storage, run, dpo(), "data", 1, false);
    // A run that ran out of memory continues with the layers recomputed, and may switch it off again.
    TrainingStage.requireSameRun(storage, run, dpo("train.gradient_checkpointing=true"), "data", 1, false);
    TrainingStage.requireSameRun(storage, run, dpo("train.gradient_checkpointing=false"), "data", 1, false);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TrainingStage.requireSameRun(
        storage, run, dpo("train.gradient_checkpointing=true", "train.beta=0.2"), "data", 1, false));
    assertTrue(e.getMessage().contains("holds a run with other settings (spec.dpo.beta: 0.1 -> 0.2)"), e.getMessage());
  }
}
