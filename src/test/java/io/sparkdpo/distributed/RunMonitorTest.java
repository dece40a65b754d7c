package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import io.sparkdpo.train.MetricsLog;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The driver's side of the logging window: each step feeds the bar, the window's record goes to the log. */
class RunMonitorTest {
  @TempDir
  Path tmp;

  private static TrackerEvent event(String type, long step, Map<String, Double> metrics) {
    return TrackerEvent.of(type, step).withMetrics(metrics).from(1, 0);
  }

  @Test
  void theLogKeepsTheWindowRecordsRankZeroSendsNotTheSteps() {
    String run = Storage.qualify(tmp.toString());
    SyntheticRunSpecs.CapturedProgress progress = new SyntheticRunSpecs.CapturedProgress();
    try (RunMonitor monitor = new RunMonitor("t", new TrainingSchedule(4, 2, 0, 0, 0),
        MetricsLog.open(Storage.local(), run), progress)) {
      monitor.beginAttempt(1, 0);
      monitor.onEvent(event(TrackerEvent.STEP, 1, Map.of("loss", 0.9, "learning_rate", 0.1)));
      monitor.onEvent(event(TrackerEvent.STEP, 2, Map.of("loss", 0.5, "learning_rate", 0.2)));
      monitor.onEvent(event(TrackerEvent.LOG, 2, Map.of("loss", 0.7, "learning_rate", 0.2)));
      monitor.onEvent(event(TrackerEvent.EVAL, 2, Map.of("eval/loss", 0.6)));
    }
    List<Map<String, Object>> records = MetricsLog.readAll(Storage.local(), run);
    assertEquals(List.of(Map.of("step", 2, "loss", 0.7, "learning_rate", 0.2), Map.of("step", 2, "eval/loss", 0.6)),
        records);
    assertTrue(progress.text().contains("loss 0.5000"), progress.text()); // the bar shows the step's own loss
  }
}
