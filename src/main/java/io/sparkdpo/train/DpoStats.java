package io.sparkdpo.train;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Sums of the DPO metrics over some pairs, so micro-batches and workers combine exactly (add, then divide by
 * the pair count once). {@link #toArray()} is the form an all-reduce carries.
 */
public record DpoStats(long pairs, double lossSum, double chosenRewardSum, double rejectedRewardSum,
                       double correct, double chosenLogpSum, double rejectedLogpSum, double nllSum) {
  public static final DpoStats EMPTY = new DpoStats(0, 0, 0, 0, 0, 0, 0, 0);
  private static final int WIDTH = 8;

  public DpoStats plus(DpoStats o) {
    return new DpoStats(pairs + o.pairs, lossSum + o.lossSum, chosenRewardSum + o.chosenRewardSum,
        rejectedRewardSum + o.rejectedRewardSum, correct + o.correct, chosenLogpSum + o.chosenLogpSum,
        rejectedLogpSum + o.rejectedLogpSum, nllSum + o.nllSum);
  }

  public double[] toArray() {
    return new double[] {pairs, lossSum, chosenRewardSum, rejectedRewardSum, correct, chosenLogpSum,
        rejectedLogpSum, nllSum};
  }

  public static DpoStats fromArray(double[] a) {
    if (a.length != WIDTH) {
      throw new IllegalArgumentException("expected " + WIDTH + " values, got " + a.length);
    }
    return new DpoStats(Math.round(a[0]), a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
  }

  /**
   * Means with TRL's metric names ({@code loss}, {@code rewards/chosen}, ...), each prefixed (e.g. {@code eval/}).
   */
  public Map<String, Double> toMetrics(String prefix) {
    if (pairs == 0) {
      throw new IllegalStateException("no pairs to average");
    }
    double n = pairs;
    Map<String, Double> m = new LinkedHashMap<>();
    m.put(prefix + MetricNames.LOSS, lossSum / n);
    m.put(prefix + MetricNames.REWARDS_CHOSEN, chosenRewardSum / n);
    m.put(prefix + MetricNames.REWARDS_REJECTED, rejectedRewardSum / n);
    m.put(prefix + MetricNames.REWARDS_MARGINS, (chosenRewardSum - rejectedRewardSum) / n);
    m.put(prefix + MetricNames.REWARDS_ACCURACIES, correct / n);
    m.put(prefix + MetricNames.LOGPS_CHOSEN, chosenLogpSum / n);
    m.put(prefix + MetricNames.LOGPS_REJECTED, rejectedLogpSum / n);
    return m;
  }

  /** TRL's {@code nll_loss} (logged with {@code rpo_alpha}): the pair-weighted mean of the micro-batches' NLL. */
  public double nllLoss() {
    if (pairs == 0) {
      throw new IllegalStateException("no pairs to average");
    }
    return nllSum / pairs;
  }
}
