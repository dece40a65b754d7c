package io.sparkdpo.eval;

import org.apache.commons.math3.stat.StatUtils;

/**
 * A sample mean with its two-sided Student-t confidence interval: mean ± t(1 - (1 - confidence) / 2, n - 1) · s / √n,
 * s the sample standard deviation. The t-interval (not a bootstrap) so the numbers are exact and reproducible;
 * with a few hundred prompts it is indistinguishable from a bootstrap interval anyway. Mean and variance are Commons
 * Math's (two-pass with its rounding correction), the t quantile {@link Quantiles#studentT}.
 */
public record MeanWithInterval(double mean, double low, double high, double confidence, int n, double standardError) {

  /** The interval of the mean of {@code values}; needs two values at least. */
  public static MeanWithInterval of(double[] values, double confidence) {
    if (values.length < 2) {
      throw new IllegalArgumentException("a confidence interval needs at least 2 values, got " + values.length);
    }
    if (!(confidence > 0 && confidence < 1)) {
      throw new IllegalArgumentException("confidence must be in (0, 1), got " + confidence);
    }
    for (int i = 0; i < values.length; i++) {
      if (!Double.isFinite(values[i])) {
        throw new IllegalArgumentException("value " + i + " is not finite: " + values[i]);
      }
    }
    int n = values.length;
    double mean = StatUtils.mean(values);
    double se = Math.sqrt(StatUtils.variance(values, mean) / n); // variance with the n - 1 denominator
    double half = Quantiles.studentT(1 - (1 - confidence) / 2, n - 1) * se;
    return new MeanWithInterval(mean, mean - half, mean + half, confidence, n, se);
  }

  /**
   * The interval of the mean difference {@code a[i] - b[i]} over paired observations (the policy and pi_SFT on
   * the same prompts): pairing removes the prompt-to-prompt variance both share, so it is narrower than comparing
   * two independent intervals.
   */
  public static MeanWithInterval ofPairedDifferences(double[] a, double[] b, double confidence) {
    if (a.length != b.length) {
      throw new IllegalArgumentException("paired samples differ in length: " + a.length + " and " + b.length);
    }
    double[] d = new double[a.length];
    for (int i = 0; i < a.length; i++) {
      d[i] = a[i] - b[i];
    }
    return of(d, confidence);
  }

  /** True when the whole interval lies above zero. */
  public boolean excludesZeroAbove() {
    return low > 0;
  }

  /** True when the whole interval lies below zero. */
  public boolean excludesZeroBelow() {
    return high < 0;
  }

  public double halfWidth() {
    return (high - low) / 2;
  }
}
