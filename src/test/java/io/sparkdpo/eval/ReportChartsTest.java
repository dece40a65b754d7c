package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.awt.Color;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;

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

  @Test
  void rewardsChartDrawsChosenAndRejectedOfEachRunInTheRunsColour() {
    ReportCharts charts = new ReportCharts(List.of("β=0.1", "β=0.5"));
    TrainingRun a = run("β=0.1", "{\"step\":5,\"rewards/chosen\":0.1,\"rewards/rejected\":-0.2}\n"
        + "{\"step\":10,\"rewards/chosen\":0.3,\"rewards/rejected\":-0.5}\n"
        + "{\"step\":10,\"eval/rewards/chosen\":0.2,\"eval/rewards/rejected\":-0.4}\n");
    TrainingRun b = run("β=0.5", "{\"step\":5,\"loss\":0.69}\n");
    XYChart train = charts.rewards(List.of(a, b), "");
    assertEquals(List.of("β=0.1 chosen", "β=0.1 rejected", "reference 0.0"), List.copyOf(train.getSeriesMap().keySet()));
    XYSeries rejected = train.getSeriesMap().get("β=0.1 rejected");
    assertArrayEquals(new double[] {5, 10}, rejected.getXData(), 0);
    assertArrayEquals(new double[] {-0.2, -0.5}, rejected.getYData(), 0);
    assertEquals(new Color(0x0072B2), rejected.getLineColor());
    assertEquals(new Color(0x0072B2), train.getSeriesMap().get("β=0.1 chosen").getLineColor());

    XYChart eval = charts.rewards(List.of(a), "eval/");
    assertArrayEquals(new double[] {0.2}, eval.getSeriesMap().get("β=0.1 chosen").getYData(), 0);
    assertNull(charts.rewards(List.of(b), ""), "a run without rewards draws nothing");
  }

  @Test
  void histogramHasOneBarSeriesPerLengthOverTheSameBucketsAndRefusesMismatchedCounts() {
    ReportCharts charts = new ReportCharts(List.of());
    Map<String, List<Long>> counts = new LinkedHashMap<>();
    counts.put("prompt_len", List.of(3L, 5L, 0L));
    counts.put("chosen_len", List.of(0L, 2L, 6L));
    CategoryChart h = charts.histogram("train", List.of("0-1", "2-3", "4-7"), counts);
    assertEquals(List.of("prompt_len", "chosen_len"), List.copyOf(h.getSeriesMap().keySet()));
    CategorySeries chosen = h.getSeriesMap().get("chosen_len");
    assertEquals(List.of("0-1", "2-3", "4-7"), List.copyOf(chosen.getXData()));
    assertEquals(List.of(0L, 2L, 6L), List.copyOf(chosen.getYData()));
    assertEquals(new Color(0xD55E00), chosen.getFillColor());
    assertEquals(ReportCharts.WIDTH, h.getWidth());
    byte[] png = ReportCharts.png(h);
    assertEquals(0x89, png[0] & 0xff, "a PNG");

    counts.put("rejected_len", List.of(1L));
    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> charts.histogram("eval", List.of("0-1", "2-3", "4-7"), counts));
    assertEquals("eval: rejected_len has 1 counts for 3 buckets", e.getMessage());
  }
}
