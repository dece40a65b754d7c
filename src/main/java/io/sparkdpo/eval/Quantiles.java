package io.sparkdpo.eval;

import org.apache.commons.math3.distribution.NormalDistribution;
import org.apache.commons.math3.distribution.TDistribution;

/**
 * Quantiles of the standard normal and Student's t distributions, for confidence intervals, from Apache Commons Math
 * (commons-math3, which Spark ships). Commons Math inverts the t CDF with a Brent solver whose default absolute
 * accuracy is 1e-9; it is tightened to 1e-14 here so intervals keep twelve significant digits (QuantilesTest checks
 * both quantiles against mpmath). The normal quantile is Commons Math's erfInv of 2p - 1, exact to a few ulps for the
 * p = 1 - (1 - confidence) / 2 > 0.5 that intervals ask for; far in the lower tail (p = 1e-10) 2p - 1 rounds away
 * digits (relative error 2e-9 there).
 */
public final class Quantiles {
  /** The t solver's absolute accuracy, against Commons Math's default 1e-9. */
  static final double T_ACCURACY = 1e-14;
  // No random generator: these distributions are never sampled.
  private static final NormalDistribution STANDARD_NORMAL = new NormalDistribution(null, 0, 1,
      NormalDistribution.DEFAULT_INVERSE_ABSOLUTE_ACCURACY);

  private Quantiles() {}

  /** The p-quantile of the standard normal distribution. */
  public static double normal(double p) {
    requireProbability(p);
    return STANDARD_NORMAL.inverseCumulativeProbability(p);
  }

  /** The p-quantile of Student's t distribution with {@code df} degrees of freedom. */
  public static double studentT(double p, double df) {
    requireProbability(p);
    if (!(df > 0) || Double.isInfinite(df)) {
      throw new IllegalArgumentException("degrees of freedom must be a finite number > 0, got " + df);
    }
    return new TDistribution(null, df, T_ACCURACY).inverseCumulativeProbability(p);
  }

  private static void requireProbability(double p) {
    if (!(p > 0 && p < 1)) {
      throw new IllegalArgumentException("probability must be in (0, 1), got " + p);
    }
  }
}
