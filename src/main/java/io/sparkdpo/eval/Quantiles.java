package io.sparkdpo.eval;

/**
 * Quantiles of the standard normal and Student's t distributions, for confidence intervals. Written out here
 * (rather than borrowed from Spark's transitive commons-math) so the evaluation maths has no hidden dependency.
 */
public final class Quantiles {
  private Quantiles() {}

  /** The p-quantile of the standard normal distribution (Wichura's AS 241, relative error about 1e-16). */
  public static double normal(double p) {
    requireProbability(p);
    double q = p - 0.5;
    if (Math.abs(q) <= 0.425) {
      double r = 0.180625 - q * q;
      return q * (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r
          + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
          + 133.14166789178437745) * r + 3.387132872796366608)
          / (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r
          + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
          + 42.313330701600911252) * r + 1.0);
    }
    double r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
    double x;
    if (r <= 5) {
      r -= 1.6;
      x = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) * r
          + 1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r
          + 4.6303378461565452959) * r + 1.42343711074968357734)
          / (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r
          + 0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r
          + 2.05319162663775882187) * r + 1.0);
    } else {
      r -= 5;
      x = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r
          + 0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r
          + 5.4637849111641143699) * r + 6.6579046435011037772)
          / (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r
          + 7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
          + 0.59983220655588793769) * r + 1.0);
    }
    return q < 0 ? -x : x;
  }

  /**
   * The p-quantile of Student's t distribution with {@code df} degrees of freedom, found by bisection on the
   * CDF; closed forms for 1 and 2 degrees of freedom, where bisection would need a very wide bracket.
   */
  public static double studentT(double p, double df) {
    requireProbability(p);
    if (!(df > 0) || Double.isInfinite(df)) {
      throw new IllegalArgumentException("degrees of freedom must be a finite number > 0, got " + df);
    }
    if (p == 0.5) {
      return 0;
    }
    if (df == 1) {
      return Math.tan(Math.PI * (p - 0.5));
    }
    if (df == 2) {
      return (2 * p - 1) * Math.sqrt(2 / (4 * p * (1 - p)));
    }
    double upper = Math.max(p, 1 - p);
    double lo = 0;
    double hi = 1;
    while (studentTCdf(hi, df) < upper) {
      lo = hi;
      hi *= 2;
    }
    for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
      double mid = 0.5 * (lo + hi);
      if (studentTCdf(mid, df) < upper) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    double t = 0.5 * (lo + hi);
    return p < 0.5 ? -t : t;
  }

  /** P(T <= t) for Student's t with {@code df} degrees of freedom. */
  public static double studentTCdf(double t, double df) {
    double tail = 0.5 * regularizedBeta(df / (df + t * t), df / 2, 0.5);
    return t >= 0 ? 1 - tail : tail;
  }

  /** The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz). */
  static double regularizedBeta(double x, double a, double b) {
    if (x <= 0) {
      return 0;
    }
    if (x >= 1) {
      return 1;
    }
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if (x > (a + 1) / (a + b + 2)) {
      return 1 - regularizedBeta(1 - x, b, a);
    }
    double front = Math.exp(a * Math.log(x) + b * Math.log1p(-x) - logBeta(a, b)) / a;
    double tiny = 1e-300;
    double f = 1;
    double c = 1;
    double d = 0;
    for (int i = 0; i <= 400; i++) {
      int m = i / 2;
      double numerator;
      if (i == 0) {
        numerator = 1;
      } else if (i % 2 == 0) {
        numerator = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
      } else {
        numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
      }
      d = 1 + numerator * d;
      d = Math.abs(d) < tiny ? tiny : d;
      d = 1 / d;
      c = 1 + numerator / c;
      c = Math.abs(c) < tiny ? tiny : c;
      double cd = c * d;
      f *= cd;
      if (Math.abs(1 - cd) < 1e-15) {
        return front * (f - 1);
      }
    }
    throw new ArithmeticException("incomplete beta did not converge for x=" + x + ", a=" + a + ", b=" + b);
  }

  private static double logBeta(double a, double b) {
    return logGamma(a) + logGamma(b) - logGamma(a + b);
  }

  /**
   * ln Gamma(x) for x > 0: Stirling's series to the x^-13 term at x >= 10 (truncation error below 1e-17), shifted
   * there by Gamma(x) = Gamma(x + k) / (x (x + 1) ... (x + k - 1)) for smaller x.
   */
  static double logGamma(double x) {
    if (!(x > 0)) {
      throw new IllegalArgumentException("logGamma needs x > 0, got " + x);
    }
    double shift = 1;
    while (x < 10) {
      shift *= x;
      x += 1;
    }
    double inv = 1 / x;
    double inv2 = inv * inv;
    double series = inv * (1.0 / 12 + inv2 * (-1.0 / 360 + inv2 * (1.0 / 1260 + inv2 * (-1.0 / 1680
        + inv2 * (1.0 / 1188 + inv2 * (-691.0 / 360360 + inv2 * (1.0 / 156)))))));
    return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series - Math.log(shift);
  }

  private static void requireProbability(double p) {
    if (!(p > 0 && p < 1)) {
      throw new IllegalArgumentException("probability must be in (0, 1), got " + p);
    }
  }
}
