package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Json;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The logging window: means over the steps since the last log, point values, running totals, exact resume. */
class MetricsWindowTest {

  /** Step s of a made-up run: values whose sums round in float64, so that only the same order gives the same bits. */
  private static Map<String, Double> step(long s) {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put(MetricNames.LOSS, 0.7 / s + 0.1 * Math.sin(s));
    m.put(MetricNames.REWARDS_ACCURACIES, s % 3 == 0 ? 1.0 : 0.5);
    m.put(MetricNames.GRAD_NORM, 10.0 + s);
    m.put(MetricNames.LEARNING_RATE, 1e-3 * s);
    m.put(MetricNames.EPOCH, s / 8.0);
    m.put(MetricNames.NUM_TOKENS, 100.0 + s);
    if (s % 2 == 0) {
      m.put(TrainingSession.LOSS_SCALE, 65536.0 / s);
      m.put(TrainingSession.SKIPPED_STEP, s == 4 ? 1.0 : 0.0);
    }
    return m;
  }

  @Test
  void logsTheMeanOfTheWindowsStepsThePointValuesOfItsLastStepAndTheRunningTotals() {
    MetricsWindow w = new MetricsWindow(0);
    for (long s = 1; s <= 3; s++) {
      w.add(s, step(s));
    }
    Map<String, Double> first = w.take();
    assertEquals((step(1).get("loss") + step(2).get("loss")) + step(3).get("loss"), 3 * first.get("loss"), 1e-15);
    assertEquals((0.5 + 0.5 + 1.0) / 3, first.get(MetricNames.REWARDS_ACCURACIES), 0);
    assertEquals(13.0, first.get(MetricNames.GRAD_NORM), 0, "the last step's gradient norm, as the Trainer logs");
    assertEquals(3e-3, first.get(MetricNames.LEARNING_RATE), 0);
    assertEquals(3 / 8.0, first.get(MetricNames.EPOCH), 0);
    assertEquals(101 + 102 + 103, first.get(MetricNames.NUM_TOKENS), 0);
    // Reported by step 2 only: its mean is over that step; a point value is the logged step's, and step 3 had none.
    assertEquals(0.0, first.get(TrainingSession.SKIPPED_STEP), 0);
    assertTrue(!first.containsKey(TrainingSession.LOSS_SCALE), first.toString());

    for (long s = 4; s <= 7; s++) {
      w.add(s, step(s));
    }
    Map<String, Double> second = w.take();
    double loss = 0;
    for (long s = 4; s <= 7; s++) {
      loss += step(s).get("loss");
    }
    assertEquals(loss / 4, second.get("loss"), 0, "summed in step order, divided once");
    assertEquals(0.5, second.get(TrainingSession.SKIPPED_STEP), 0, "steps 4 and 6 reported it; 4 was skipped");
    assertEquals(17.0, second.get(MetricNames.GRAD_NORM), 0);
    assertEquals(7 * 100 + 28, second.get(MetricNames.NUM_TOKENS), 0, "the total goes on across windows");
    assertEquals(List.of("epoch", "grad_norm", "learning_rate", "loss", "num_tokens", "rewards/accuracies",
        "amp/skipped_step").stream().sorted().toList(), new ArrayList<>(second.keySet()));
  }

  @Test
  void aWindowRestoredFromItsJsonStateContinuesBitForBit() throws Exception {
    MetricsWindow straight = new MetricsWindow(0);
    List<Map<String, Double>> logs = new ArrayList<>();
    for (long s = 1; s <= 10; s++) {
      straight.add(s, step(s));
      if (s % 4 == 0 || s == 10) {
        logs.add(straight.take());
      }
    }

    MetricsWindow before = new MetricsWindow(0);
    List<Map<String, Double>> resumedLogs = new ArrayList<>();
    for (long s = 1; s <= 6; s++) {
      before.add(s, step(s));
      if (s % 4 == 0) {
        resumedLogs.add(before.take());
      }
    }
    // A checkpoint after step 6, inside the window 5..8.
    byte[] saved = Json.MAPPER.writeValueAsBytes(before.state());
    MetricsWindow after = MetricsWindow.restore(Json.MAPPER.readValue(saved, MetricsWindow.State.class));
    assertEquals(6, after.lastStep());
    for (long s = 7; s <= 10; s++) {
      after.add(s, step(s));
      if (s % 4 == 0 || s == 10) {
        resumedLogs.add(after.take());
      }
    }
    assertEquals(logs, resumedLogs); // Double.equals: the same bits
    assertEquals(Json.MAPPER.writeValueAsString(logs), Json.MAPPER.writeValueAsString(resumedLogs));
  }

  @Test
  void stepsMustComeInOrder() {
    MetricsWindow w = new MetricsWindow(5);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.add(7, step(7)));
    assertEquals("metrics of step 7 after step 5", e.getMessage());
  }
}
