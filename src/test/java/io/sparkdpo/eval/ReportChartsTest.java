package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.awt.Color;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.XYChart;

class ReportChartsTest {
  private static TrainingRun run(String label, String lines) {
    return new TrainingRun(label, 0.1, MetricsHistory.parse(lines, label));
  }

  @Test
  void smoothingIsADebiasedExponentialMovingAverage() {
    // w = 0.5: ema 0.5, 1.75, 1.875 divided by 1 - w^t = 0.5, 0.75, 0.875
    assertArrayEquals(new double[] {1.0, 7.0 / 3, 15.0 / 7}, ReportCharts.smoothed(new double[] {1, 3, 2}, 0.5),
        1e-15);
  }

  @Test
  void tickLabelsHaveALeadingZeroAndNoFloatingPointNoise() {
    assertEquals("0.09", ReportCharts.tick(0.09));
    assertEquals("0.3", ReportCharts.tick(0.1 + 0.2));
    assertEquals("200", ReportCharts.tick(200.0));
    assertEquals("0", ReportCharts.tick(-0.0));
    assertEquals("-1.5", ReportCharts.tick(-1.5));
    assertEquals("", ReportCharts.tick(Double.NaN));
  }

  @Test
  void eachLabelKeepsOneColourAcrossCharts() {
    ReportCharts charts = new ReportCharts(List.of("β=0.1", "β=0.5", "β=0.1"));
    assertEquals(new Color(0x0072B2), charts.colour("β=0.1"));
    assertEquals(new Color(0xD55E00), charts.colour("β=0.5"));
    assertEquals(new Color(0x009E73), charts.colour("unseen"));
    assertEquals(new Color(0x009E73), charts.colour("unseen"));
  }

  @Test
  void chartsWithoutDataAreNullAndLongLossCurvesAreSmoothed() {
    ReportCharts charts = new ReportCharts(List.of());
    TrainingRun noEval = run("a", "{\"step\":1,\"loss\":0.7}\n");
    assertNull(charts.evalMetric(List.of(noEval), "eval/rewards/accuracies", "t", "y", 0.5, "chance"));
    assertNull(charts.loss(List.of(run("b", "{\"step\":1,\"eval/rewards/accuracies\":0.5}\n"))));
    StringBuilder lines = new StringBuilder();
    for (int step = 1; step <= ReportCharts.SMOOTH_ABOVE + 1; step++) {
      lines.append("{\"step\":").append(step).append(",\"loss\":0.5}\n");
    }
    XYChart loss = charts.loss(List.of(run("c", lines.toString())));
    assertNotNull(loss);
    // raw (faint), smoothed, and the log 2 reference
    assertEquals(List.of("c train (raw)", "c train", "log 2 (policy = reference)"),
        List.copyOf(loss.getSeriesMap().keySet()));
    assertEquals(ReportCharts.WIDTH, loss.getWidth());
  }
}
