package io.sparkdpo.eval;

/**
 * How often the policy beats a baseline on the same prompts: a win counts 1, a tie 1/2, a loss 0. The interval is
 * Wilson's score interval with the half-counted ties as successes: it stays inside [0, 1] even near 0 or 1, and
 * since a tie's outcome (1/2) varies less than a coin flip, it is slightly conservative when ties occur.
 */
public record WinRate(double rate, double low, double high, double confidence, int wins, int ties, int losses) {

  /** Compares {@code policy[i]} with {@code baseline[i]} for every prompt i (e.g. each prompt's mean reward). */
  public static WinRate of(double[] policy, double[] baseline, double confidence) {
    if (policy.length != baseline.length) {
      throw new IllegalArgumentException(
          "policy and baseline differ in prompt count: " + policy.length + " and " + baseline.length);
    }
    if (policy.length == 0) {
      throw new IllegalArgumentException("a win rate needs at least one prompt");
    }
    if (!(confidence > 0 && confidence < 1)) {
      throw new IllegalArgumentException("confidence must be in (0, 1), got " + confidence);
    }
    int wins = 0;
    int ties = 0;
    int losses = 0;
    for (int i = 0; i < policy.length; i++) {
      if (!Double.isFinite(policy[i]) || !Double.isFinite(baseline[i])) {
        throw new IllegalArgumentException(
            "prompt " + i + " has a non-finite reward: policy " + policy[i] + ", baseline " + baseline[i]);
      }
      int c = Double.compare(policy[i], baseline[i]);
      if (c > 0) {
        wins++;
      } else if (c < 0) {
        losses++;
      } else {
        ties++;
      }
    }
    int n = policy.length;
    double p = (wins + 0.5 * ties) / n;
    double z = Quantiles.normal(1 - (1 - confidence) / 2);
    double z2n = z * z / n;
    double centre = (p + z2n / 2) / (1 + z2n);
    double half = z / (1 + z2n) * Math.sqrt(p * (1 - p) / n + z2n / (4.0 * n));
    return new WinRate(p, Math.max(0, centre - half), Math.min(1, centre + half), confidence, wins, ties, losses);
  }

  public int n() {
    return wins + ties + losses;
  }
}
