package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.TrainSettings;
import java.util.List;
import org.junit.jupiter.api.Test;

class StepPlanTest {
  @Test
  void epochsBecomeStepsOfFullBatches() {
    TrainSettings t = ConfigLoader.load(null, List.of("train.per_device_train_batch_size=4",
        "train.gradient_accumulation_steps=2", "train.num_train_epochs=1.5", "train.logging_steps=5",
        "train.eval_steps=10", "train.save_steps=0")).train();
    StepPlan plan = StepPlan.of(t, 100);
    assertEquals(8, plan.pairsPerStep());
    assertEquals(19, plan.totalSteps(), "ceil(1.5 * 100 / 8)");
    assertEquals(0.8, plan.epochAt(10), 1e-12);
    assertTrue(plan.logAfter(5));
    assertFalse(plan.logAfter(6));
    assertTrue(plan.logAfter(19), "always after the last step");
    assertTrue(plan.evaluateAfter(10));
    assertFalse(plan.evaluateAfter(5));
    assertFalse(plan.saveAfter(10), "save_steps 0: only at the end");
    assertTrue(plan.saveAfter(19));
  }

  @Test
  void maxStepsWinsOverEpochs() {
    TrainSettings t = ConfigLoader.load(null, List.of("train.max_steps=7")).train();
    assertEquals(7, StepPlan.of(t, 1_000_000).totalSteps());
    assertThrows(IllegalArgumentException.class, () -> StepPlan.of(t, 0));
  }
}
