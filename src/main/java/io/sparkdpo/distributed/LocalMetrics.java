package io.sparkdpo.distributed;

import java.util.Map;

/**
 * One rank's metrics of a step or an evaluation: means over its own items, and how many items they cover.
 * Ranks are combined by a weighted mean ({@link MetricsMean}), so ranks with more eval pairs count more.
 *
 * <p>Every rank reports the same metric names; a rank with nothing to report (no eval pairs) gives weight 0 and
 * any values for those names.
 *
 * @param weight items behind the means (pairs, tokens); 0 when the rank had nothing to report
 * @param values metric name to this rank's mean
 */
public record LocalMetrics(double weight, Map<String, Double> values) {

  /** Nothing to report. */
  public static final LocalMetrics NONE = new LocalMetrics(0, Map.of());

  public LocalMetrics {
    if (!(weight >= 0) || Double.isInfinite(weight)) {
      throw new IllegalArgumentException("metrics weight must be finite and >= 0, got " + weight);
    }
    values = Map.copyOf(values);
  }

  /** Means with weight 1: for training steps, where every rank's batch has the same size. */
  public static LocalMetrics of(Map<String, Double> values) {
    return new LocalMetrics(1, values);
  }
}
