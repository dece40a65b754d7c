package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.LrSchedulerType;
import io.sparkdpo.config.TrainSettings;
import io.sparkdpo.io.Json;
import java.util.List;
import org.junit.jupiter.api.Test;

class LearningRateScheduleTest {
  @Test
  void matchesTransformersSchedulesDrivenByLambdaLr() {
    JsonNode cases = Golden.load("schedules.json").get("cases");
    assertEquals(8, cases.size());
    for (JsonNode c : cases) {
      LrSchedulerType type = LrSchedulerType.valueOf(c.get("type").asText().toUpperCase());
      LearningRateSchedule s = new LearningRateSchedule(type, c.get("base_lr").asDouble(),
          c.get("warmup_steps").asLong(), c.get("total_steps").asLong());
      JsonNode lrs = c.get("lrs");
      for (int step = 0; step < lrs.size(); step++) {
        // Same double arithmetic as Python: equal to the last bit or one rounding away.
        assertEquals(lrs.get(step).asDouble(), s.at(step), 0.0, type + " warmup " + s.warmupSteps() + " step " + step);
      }
    }
  }

  @Test
  void warmupRatioRoundsUpAndWarmupStepsWin() {
    TrainSettings ratio = ConfigLoader.load(null, List.of("train.warmup_ratio=0.1", "train.learning_rate=1e-4",
        "train.lr_scheduler_type=cosine")).train();
    LearningRateSchedule s = LearningRateSchedule.of(ratio, 95);
    assertEquals(10, s.warmupSteps(), "ceil(0.1 * 95)");
    assertEquals(LrSchedulerType.COSINE, s.type());
    assertEquals(1e-4, s.baseLr());
    TrainSettings steps = ConfigLoader.load(null, List.of("train.warmup_steps=7")).train();
    assertEquals(7, LearningRateSchedule.of(steps, 95).warmupSteps());
  }

  @Test
  void survivesAJsonRoundTripForCheckpoints() throws Exception {
    LearningRateSchedule s = new LearningRateSchedule(LrSchedulerType.CONSTANT_WITH_WARMUP, 3e-5, 4, 100);
    byte[] json = Json.MAPPER.writeValueAsBytes(s);
    assertEquals(s, Json.MAPPER.readValue(json, LearningRateSchedule.class));
    assertThrows(IllegalArgumentException.class, () -> new LearningRateSchedule(LrSchedulerType.LINEAR, 1, 0, 0));
  }
}
