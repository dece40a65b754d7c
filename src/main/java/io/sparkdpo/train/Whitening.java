package io.sparkdpo.train;

/**
 * TRL's {@code masked_whiten} over every token of a batch of ragged rows: {@code (x - mean) / sqrt(var + 1e-8)},
 * the variance unbiased (n - 1), and with {@code shiftMean} false the mean added back (how TRL whitens rewards).
 * Sums run in row order, in float64. {@link #moments} and {@link #apply} are split so that replicas can add their
 * {@link Moments} (count, sum, then the centred squares about the global mean) before whitening alike.
 */
public final class Whitening {
  /** TRL's epsilon under the square root. */
  public static final double EPSILON = 1e-8;

  private Whitening() {}

  /** Mean and unbiased variance of a set of values. */
  public record Moments(long count, double mean, double variance) {}

  public static double[][] whiten(double[][] values, boolean shiftMean) {
    return apply(values, moments(values), shiftMean);
  }

  public static Moments moments(double[][] values) {
    long count = 0;
    double sum = 0;
    for (double[] row : values) {
      for (double x : row) {
        sum += x;
        count++;
      }
    }
    if (count < 2) {
      throw new IllegalArgumentException("whitening needs at least 2 values for an unbiased variance, got " + count
          + " (TRL fails likewise: use a larger mini-batch)");
    }
    double mean = sum / count;
    double squares = 0;
    for (double[] row : values) {
      for (double x : row) {
        squares += (x - mean) * (x - mean);
      }
    }
    return new Moments(count, mean, squares / count * count / (count - 1));
  }

  public static double[][] apply(double[][] values, Moments m, boolean shiftMean) {
    double scale = 1.0 / Math.sqrt(m.variance() + EPSILON);
    double[][] out = new double[values.length][];
    for (int i = 0; i < values.length; i++) {
      out[i] = new double[values[i].length];
      for (int t = 0; t < values[i].length; t++) {
        double w = (values[i][t] - m.mean()) * scale;
        out[i][t] = shiftMean ? w : w + m.mean();
      }
    }
    return out;
  }
}
