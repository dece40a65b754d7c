package io.sparkdpo.eval;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.AxesChartStyler;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.XYStyler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The report's and the notebooks' charts, drawn with XChart into PNG bytes without a display: training and eval
 * loss, implicit rewards of chosen and rejected responses, any logged metric (eval preference accuracy, reward
 * margin) against step, mean reward against KL (the DPO paper's frontier plot), and token-length histograms of a
 * prepared dataset. One colour per label across all charts.
 */
public final class ReportCharts {
  public static final int WIDTH = 960;
  public static final int HEIGHT = 540;
  /** Runs with more loss points than this also get a smoothed line (raw points are drawn faintly). */
  static final int SMOOTH_ABOVE = 30;
  static final double SMOOTHING = 0.9;

  // Okabe-Ito colours: distinguishable with colour-vision deficiencies.
  private static final Color[] PALETTE = {new Color(0x0072B2), new Color(0xD55E00), new Color(0x009E73),
      new Color(0xCC79A7), new Color(0xE69F00), new Color(0x56B4E9), new Color(0x882255), new Color(0x444444)};
  private static final Color REFERENCE = new Color(0x6E6E6E);
  private static final Color GRID = new Color(0xE6E6E6);
  private static final Color TEXT = new Color(0x222222);
  private static final BasicStroke DASHED = new BasicStroke(1.6f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 10f,
      new float[] {6f, 4f}, 0f);
  private static final BasicStroke SOLID = new BasicStroke(1.8f);
  private static final BasicStroke DOTTED = new BasicStroke(1.4f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND, 10f,
      new float[] {1.5f, 4f}, 0f);

  static {
    // Charts render off-screen; on a cluster node there is no display.
    if (System.getProperty("java.awt.headless") == null) {
      System.setProperty("java.awt.headless", "true");
    }
  }

  private final Map<String, Color> colours = new LinkedHashMap<>();

  /** Assigns colours to labels in the order given (runs first, then any policy labels not among them). */
  public ReportCharts(List<String> labels) {
    for (String label : labels) {
      colours.putIfAbsent(label, PALETTE[colours.size() % PALETTE.length]);
    }
  }

  public Color colour(String label) {
    return colours.computeIfAbsent(label, l -> PALETTE[colours.size() % PALETTE.length]);
  }

  /** Training loss (per step) and eval loss (per evaluation) of every run; null when no run logged a loss. */
  public XYChart loss(List<TrainingRun> runs) {
    XYChart chart = chart("DPO loss", "step", "loss");
    double maxStep = 0;
    for (TrainingRun run : runs) {
      Color c = colour(run.label());
      MetricsHistory.Series train = run.metrics().series("loss");
      if (!train.isEmpty()) {
        maxStep = Math.max(maxStep, train.steps()[train.size() - 1]);
        if (train.size() > SMOOTH_ABOVE) {
          line(chart, run.label() + " train (raw)", train.steps(), train.values(), faint(c), 1f, false);
          line(chart, run.label() + " train", train.steps(), smoothed(train.values(), SMOOTHING), c, 2.2f, true);
        } else {
          line(chart, run.label() + " train", train.steps(), train.values(), c, 2.2f, true);
        }
      }
      MetricsHistory.Series eval = run.metrics().series("eval/loss");
      if (!eval.isEmpty()) {
        maxStep = Math.max(maxStep, eval.steps()[eval.size() - 1]);
        XYSeries s = line(chart, run.label() + " eval", eval.steps(), eval.values(), c, 1.6f, true);
        s.setLineStyle(DASHED);
        s.setMarker(SeriesMarkers.CIRCLE);
      }
    }
    if (chart.getSeriesMap().isEmpty()) {
      return null;
    }
    // The DPO loss starts at log 2 when the policy equals the reference model.
    reference(chart, "log 2 (policy = reference)", 0, stepAxisEnd(maxStep), Math.log(2));
    stepAxis(chart, maxStep);
    return chart;
  }

  /**
   * The implicit rewards β·log(π/π_ref) of chosen (solid) and rejected (dashed) responses against step, TRL's
   * {@code rewards/chosen} and {@code rewards/rejected} (or the same with {@code prefix} {@code eval/}), one colour
   * per run; null when no run logged them.
   */
  public XYChart rewards(List<TrainingRun> runs, String prefix) {
    XYChart chart = chart(prefix.isEmpty() ? "Implicit rewards" : "Implicit rewards (" + prefix + ")", "step",
        "β·log(π/π_ref)");
    double maxStep = 0;
    for (TrainingRun run : runs) {
      Color c = colour(run.label());
      for (String which : List.of("chosen", "rejected")) {
        MetricsHistory.Series s = run.metrics().series(prefix + "rewards/" + which);
        if (!s.isEmpty()) {
          maxStep = Math.max(maxStep, s.steps()[s.size() - 1]);
          XYSeries line = line(chart, run.label() + " " + which, s.steps(), s.values(), c, 2.2f, true);
          if (which.equals("rejected")) {
            line.setLineStyle(DASHED);
          }
        }
      }
    }
    if (chart.getSeriesMap().isEmpty()) {
      return null;
    }
    reference(chart, null, 0, stepAxisEnd(maxStep), 0);
    stepAxis(chart, maxStep);
    return chart;
  }

  /**
   * A logged metric (training, or evaluation with the {@code eval/} prefix) against step, one line per run, with a
   * horizontal reference (named in the legend unless {@code referenceName} is null); null when no run logged the
   * metric.
   */
  public XYChart evalMetric(List<TrainingRun> runs, String key, String title, String yTitle, double referenceValue,
      String referenceName) {
    XYChart chart = chart(title, "step", yTitle);
    double maxStep = 0;
    for (TrainingRun run : runs) {
      MetricsHistory.Series s = run.metrics().series(key);
      if (!s.isEmpty()) {
        maxStep = Math.max(maxStep, s.steps()[s.size() - 1]);
        line(chart, run.label(), s.steps(), s.values(), colour(run.label()), 2.2f, true)
            .setMarker(SeriesMarkers.CIRCLE);
      }
    }
    if (chart.getSeriesMap().isEmpty()) {
      return null;
    }
    reference(chart, referenceName, 0, stepAxisEnd(maxStep), referenceValue);
    stepAxis(chart, maxStep);
    return chart;
  }

  /**
   * Mean ground-truth reward against sampled KL(pi || pi_SFT) per continuation, one series per run across its
   * checkpoints, with confidence intervals as error bars; pi_SFT sits at KL 0.
   */
  public XYChart rewardVsKl(GenerationEval gen) {
    XYChart chart = chart("Reward vs KL frontier", "KL(π ‖ π_SFT), nats per continuation",
        "mean reward (" + gen.reward() + ")");
    chart.getStyler().setErrorBarsColorSeriesColor(true);
    double maxKl = 0;
    Map<String, List<PolicyEval>> byLabel = new LinkedHashMap<>();
    for (PolicyEval p : gen.policies()) {
      byLabel.computeIfAbsent(p.label(), l -> new ArrayList<>()).add(p);
      maxKl = Math.max(maxKl, p.kl().perSequence().mean());
    }
    double right = maxKl > 0 ? maxKl * 1.08 : 1;
    MeanWithInterval sft = gen.sftReward();
    reference(chart, "π_SFT mean reward", Math.min(0, minKl(gen)), right, sft.mean());
    XYSeries sftPoint = chart.addSeries("π_SFT (" + ReportFormat.percent(gen.confidence()) + " CI)",
        new double[] {0}, new double[] {sft.mean()}, new double[] {sft.halfWidth()});
    sftPoint.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    sftPoint.setMarker(SeriesMarkers.DIAMOND);
    sftPoint.setMarkerColor(TEXT);
    sftPoint.setLineColor(TEXT);
    for (Map.Entry<String, List<PolicyEval>> e : byLabel.entrySet()) {
      List<PolicyEval> points = new ArrayList<>(e.getValue());
      points.sort(Comparator.comparingLong(PolicyEval::step));
      double[] x = new double[points.size()];
      double[] y = new double[points.size()];
      double[] err = new double[points.size()];
      for (int i = 0; i < points.size(); i++) {
        x[i] = points.get(i).kl().perSequence().mean();
        y[i] = points.get(i).reward().mean();
        err[i] = points.get(i).reward().halfWidth();
      }
      Color c = colour(e.getKey());
      XYSeries s = chart.addSeries(e.getKey(), x, y, err);
      s.setLineColor(c);
      s.setMarkerColor(c);
      s.setLineWidth(1.8f);
      s.setMarker(SeriesMarkers.CIRCLE);
    }
    return chart;
  }

  /**
   * The RLHF-vs-DPO frontier: mean ground-truth reward against KL(pi || pi_SFT) per continuation for pi_SFT, each DPO
   * and PPO run (one line through its checkpoints in step order; circles for DPO, squares for PPO) and best-of-n
   * (triangles through n = 1, 4, 16, dashed: its KL is the analytic log n - (n-1)/n). Reward intervals are error bars;
   * a sampled KL's interval is a thin horizontal bar through the point.
   */
  public XYChart frontier(Frontier f) {
    XYChart chart = chart("Reward vs KL: DPO, PPO and best-of-n", "KL(π ‖ π_SFT), nats per continuation",
        "mean reward (" + f.reward() + ")");
    chart.getStyler().setErrorBarsColorSeriesColor(true);
    double right = Math.max(1e-9, f.points().stream().mapToDouble(FrontierPoint::klHigh).max().orElse(0)) * 1.08;
    MeanWithInterval sft = f.points(FrontierPoint.SFT).get(0).reward();
    reference(chart, "π_SFT mean reward", 0, right, sft.mean());
    XYSeries sftPoint = chart.addSeries("π_SFT (" + ReportFormat.percent(f.confidence()) + " CI)",
        new double[] {0}, new double[] {sft.mean()}, new double[] {sft.halfWidth()});
    sftPoint.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    sftPoint.setMarker(SeriesMarkers.DIAMOND);
    sftPoint.setMarkerColor(TEXT);
    sftPoint.setLineColor(TEXT);
    Map<String, List<FrontierPoint>> bySeries = new LinkedHashMap<>();
    for (FrontierPoint p : f.points()) {
      if (!p.method().equals(FrontierPoint.SFT)) {
        bySeries.computeIfAbsent(p.series(), s -> new ArrayList<>()).add(p);
      }
    }
    for (Map.Entry<String, List<FrontierPoint>> e : bySeries.entrySet()) {
      List<FrontierPoint> points = new ArrayList<>(e.getValue());
      points.sort(Comparator.comparingLong(FrontierPoint::step));
      String method = points.get(0).method();
      double[] x = new double[points.size()];
      double[] y = new double[points.size()];
      double[] err = new double[points.size()];
      for (int i = 0; i < points.size(); i++) {
        x[i] = points.get(i).kl();
        y[i] = points.get(i).reward().mean();
        err[i] = points.get(i).reward().halfWidth();
      }
      Color c = colour(e.getKey());
      String name = method.equals(FrontierPoint.BEST_OF_N) ? e.getKey() + ", n = " + points.stream()
          .map(p -> String.valueOf(p.step())).collect(java.util.stream.Collectors.joining(", ")) + ", KL analytic"
          : e.getKey();
      XYSeries s = chart.addSeries(name, x, y, err);
      s.setLineColor(c);
      s.setMarkerColor(c);
      s.setLineWidth(1.8f);
      s.setLineStyle(SOLID); // else XChart cycles dash patterns over the series
      switch (method) {
        case FrontierPoint.PPO -> s.setMarker(SeriesMarkers.SQUARE);
        case FrontierPoint.BEST_OF_N -> {
          s.setMarker(SeriesMarkers.TRIANGLE_UP);
          s.setLineStyle(DASHED);
        }
        default -> s.setMarker(SeriesMarkers.CIRCLE);
      }
      for (FrontierPoint p : points) {
        if (!p.klAnalytic() && p.klHigh() > p.klLow()) {
          XYSeries bar = line(chart, name + " KL CI " + p.step(), new double[] {p.klLow(), p.klHigh()},
              new double[] {p.reward().mean(), p.reward().mean()}, c, 1f, false);
          bar.setLineStyle(new BasicStroke(1f));
        }
      }
    }
    return chart;
  }

  private static double minKl(GenerationEval gen) {
    return gen.policies().stream().mapToDouble(p -> p.kl().perSequence().mean()).min().orElse(0);
  }

  /**
   * Token-length histograms side by side: one bar series per length (prompt, chosen, ...), in the order given, over
   * the same buckets; {@code counts} maps each length to its count per bucket.
   *
   * @param buckets the buckets' labels on the x axis ("0-1", "2-3", ...)
   */
  public CategoryChart histogram(String title, List<String> buckets, Map<String, List<Long>> counts) {
    CategoryChart chart = new CategoryChartBuilder().width(WIDTH).height(HEIGHT).title(title)
        .xAxisTitle("tokens").yAxisTitle("rows").build();
    style(chart.getStyler());
    chart.getStyler().setXAxisLabelRotation(45);
    chart.getStyler().setAvailableSpaceFill(0.85);
    counts.forEach((name, n) -> {
      if (n.size() != buckets.size()) {
        throw new IllegalArgumentException(title + ": " + name + " has " + n.size() + " counts for "
            + buckets.size() + " buckets");
      }
      CategorySeries s = chart.addSeries(name, buckets, n);
      s.setFillColor(colour(name));
    });
    return chart;
  }

  /** PNG bytes of a chart at its own size. */
  public static byte[] png(Chart<?, ?> chart) {
    try {
      return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot encode chart " + chart.getTitle() + ": " + e.getMessage(), e);
    }
  }

  /** The chart as an image at its own size, for a notebook to display inline. */
  public static BufferedImage image(Chart<?, ?> chart) {
    return BitmapEncoder.getBufferedImage(chart);
  }

  /** A tick label: at most six significant digits, no trailing zeros, a leading zero before the point. */
  static String tick(Double v) {
    if (v == null || !Double.isFinite(v)) {
      return "";
    }
    String t = new BigDecimal(v).round(new MathContext(6)).stripTrailingZeros().toPlainString();
    return t.equals("-0") ? "0" : t;
  }

  /** Exponential moving average with TensorBoard's start-up bias correction. */
  static double[] smoothed(double[] values, double weight) {
    double[] out = new double[values.length];
    double ema = 0;
    double debias = 1;
    for (int i = 0; i < values.length; i++) {
      ema = weight * ema + (1 - weight) * values[i];
      debias *= weight;
      out[i] = ema / (1 - debias);
    }
    return out;
  }

  private static XYChart chart(String title, String xTitle, String yTitle) {
    XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle(xTitle)
        .yAxisTitle(yTitle).build();
    XYStyler s = chart.getStyler();
    s.setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
    style(s);
    s.setxAxisTickLabelsFormattingFunction(ReportCharts::tick);
    return chart;
  }

  /** The look every chart shares: white, light horizontal grid, legend on the right, readable fonts. */
  private static void style(AxesChartStyler s) {
    s.setChartBackgroundColor(Color.WHITE);
    s.setPlotBackgroundColor(Color.WHITE);
    s.setPlotBorderVisible(false);
    s.setPlotGridLinesColor(GRID);
    s.setPlotGridLinesStroke(new BasicStroke(1f));
    s.setPlotGridVerticalLinesVisible(false);
    s.setAxisTickMarksColor(REFERENCE);
    s.setAxisTickLabelsColor(TEXT);
    s.setChartFontColor(TEXT);
    s.setChartTitleBoxVisible(false);
    s.setChartTitleFont(new Font(Font.SANS_SERIF, Font.BOLD, 18));
    s.setAxisTitleFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
    s.setAxisTickLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    s.setLegendFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    s.setLegendPosition(Styler.LegendPosition.OutsideE);
    s.setLegendBorderColor(Color.WHITE);
    s.setLegendBackgroundColor(Color.WHITE);
    s.setChartPadding(14);
    s.setPlotMargin(8);
    s.setMarkerSize(7);
    s.setAntiAlias(true);
    s.setLocale(Locale.ROOT);
    s.setyAxisTickLabelsFormattingFunction(ReportCharts::tick);
  }

  private static XYSeries line(XYChart chart, String name, double[] x, double[] y, Color c, float width,
      boolean inLegend) {
    XYSeries s = chart.addSeries(name, x, y);
    s.setLineColor(c);
    s.setMarkerColor(c);
    s.setLineWidth(width);
    s.setMarker(SeriesMarkers.NONE);
    s.setShowInLegend(inLegend);
    return s;
  }

  /**
   * Where a step chart's reference line ends: a thousandth of a step past the last step. XChart puts the ticks on
   * the data points when all x values are equally spaced (steps 1..200 get ticks 0, 9, 18, ...); one x value off
   * the grid makes it choose round ticks instead. The overshoot lies outside the axis and is not drawn.
   */
  private static double stepAxisEnd(double maxStep) {
    return Math.max(maxStep, 1) + 1e-3;
  }

  /** Steps from 0 to the last one, so every step chart starts at the origin of training. */
  private static void stepAxis(XYChart chart, double maxStep) {
    chart.getStyler().setXAxisMin(0.0);
    chart.getStyler().setXAxisMax(Math.max(maxStep, 1));
  }

  private static void reference(XYChart chart, String name, double x0, double x1, double y) {
    XYSeries s = chart.addSeries(name == null ? "reference " + y : name, new double[] {x0, x1},
        new double[] {y, y});
    s.setShowInLegend(name != null);
    s.setLineColor(REFERENCE);
    s.setLineStyle(DOTTED);
    s.setMarker(SeriesMarkers.NONE);
  }

  private static Color faint(Color c) {
    return new Color(c.getRed(), c.getGreen(), c.getBlue(), 70);
  }
}
