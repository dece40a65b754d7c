package io.sparkdpo.train;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Sums of the DPO metrics over some pairs, so micro-batches and workers combine exactly (add, then divide by
 * the pair count once). {@link #toArray()} is the form an all-reduce carries. The NLL and the mean logits are
 * per micro-batch in TRL (a mean over its tokens): they enter as the micro-batch's value times its pairs.
 */
public record DpoStats(long pairs, double lossSum, double chosenRewardSum, double rejectedRewardSum,
                       double correct, double chosenLogpSum, double rejectedLogpSum, double nllSum,
                       double chosenLogitsSum, double rejectedLogitsSum) {
  public static final DpoStats EMPTY = new DpoStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  private static final int WIDTH = 10;

  public DpoStats plus(DpoStats o) {
    return new DpoStats(pairs + o.pairs, lossSum + o.lossSum, chosenRewardSum + o.chosenRewardSum,
        rejectedRewardSum + o.rejectedRewardSum, correct + o.correct, chosenLogpSum + o.chosenLogpSum,
        rejectedLogpSum + o.rejectedLogpSum, nllSum + o.nllSum, chosenLogitsSum + o.chosenLogitsSum,
        rejectedLogitsSum + o.rejectedLogitsSum);
  }

  /**
   * These statistics with a micro-batch's mean logits over its chosen and rejected response positions (TRL's
   * {@code mean_chosen_logits}, {@code mean_rejected_logits}), weighted by its pairs.
   */
  public DpoStats withMeanLogits(double chosen, double rejected) {
    return new DpoStats(pairs, lossSum, chosenRewardSum, rejectedRewardSum, correct, chosenLogpSum,
        rejectedLogpSum, nllSum, chosen * pairs, rejected * pairs);
  }

  public double[] toArray() {
    return new double[] {pairs, lossSum, chosenRewardSum, rejectedRewardSum, correct, chosenLogpSum,
        rejectedLogpSum, nllSum, chosenLogitsSum, rejectedLogitsSum};
  }

  public static DpoStats fromArray(double[] a) {
    if (a.length != WIDTH) {
      throw new IllegalArgumentException("expected " + WIDTH + " values, got " + a.length);
    }
    return new DpoStats(Math.round(a[0]), a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
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
    m.put(prefix + MetricNames.LOGITS_CHOSEN, chosenLogitsSum / n);
    m.put(prefix + MetricNames.LOGITS_REJECTED, rejectedLogitsSum / n);
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
