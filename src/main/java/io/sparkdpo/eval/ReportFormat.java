package io.sparkdpo.eval;

import java.util.Locale;

/** How the report prints numbers: a fixed locale, and decimals that suit the magnitude. */
public final class ReportFormat {
  private ReportFormat() {}

  /** 4 decimals below 1 (per-word rewards are small), 3 up to 100, 1 beyond; "n/a" for NaN. */
  public static String num(double x) {
    if (Double.isNaN(x)) {
      return "n/a";
    }
    if (Double.isInfinite(x)) {
      return x > 0 ? "∞" : "-∞";
    }
    double a = Math.abs(x);
    String s = String.format(Locale.ROOT, a >= 100 ? "%.1f" : a >= 1 ? "%.3f" : "%.4f", x);
    // "-0.0000" reads as a sign error; print zero without a sign.
    return s.matches("-0\\.0*") ? s.substring(1) : s;
  }

  /** {@link #num} with an explicit sign: "+0.0123", "-0.0045". */
  public static String signed(double x) {
    String s = num(x);
    return s.startsWith("-") || s.equals("n/a") || s.matches("0\\.0*") ? s : "+" + s;
  }

  /** A confidence level as a percentage: 0.95 -> "95%", 0.999 -> "99.9%". */
  public static String percent(double confidence) {
    return percentOf(confidence).replaceAll("\\.0%$", "%");
  }

  /** A proportion as a percentage with one decimal: 0.6125 -> "61.3%". */
  public static String percentOf(double proportion) {
    return String.format(Locale.ROOT, "%.1f%%", 100 * proportion);
  }
}
