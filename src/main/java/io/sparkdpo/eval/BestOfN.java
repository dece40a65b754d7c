package io.sparkdpo.eval;

/**
 * Best-of-n as a policy: per prompt, n continuations sampled from pi_SFT, and the one a selector (the reward model,
 * or the ground-truth reward as an oracle) scores highest is the answer. It is evaluated like any policy, by the
 * ground-truth reward of the kept continuation, but its KL from pi_SFT is not measured from log-probs (the policy
 * has no tractable density): it is the analytic value used in the literature (Stiennon et al. 2020, the DPO paper's
 * frontier),
 * <pre>
 *   KL(best-of-n || pi_SFT) = log n - (n - 1) / n      nats per continuation
 * </pre>
 * exact when the selector's scores never tie and an upper bound otherwise (Beirami et al. 2024). Reports must say
 * that this point's KL is this formula, not a sampled estimate like the trained policies' ({@link SampledKl}).
 *
 * <p>The first n of each prompt's samples are used, so the points for n = 1, 4, 16 can share one pool of 16
 * samples per prompt (nested, as commonly done); ties go to the earliest sample.
 */
public final class BestOfN {
  private BestOfN() {}

  /**
   * @param reward the ground-truth reward of the kept continuations, mean with its interval over prompts
   * @param selectorScore the selector's mean score of the kept continuations
   * @param kl {@link #klEstimate(int)} of n
   */
  public record Result(int n, MeanWithInterval reward, double selectorScore, double kl) {}

  /** {@code log n - (n - 1) / n}: 0 for n = 1, about 0.636 for 4, 1.835 for 16. */
  public static double klEstimate(int n) {
    if (n < 1) {
      throw new IllegalArgumentException("best-of-n needs n >= 1, got " + n);
    }
    return Math.log(n) - (n - 1.0) / n;
  }

  /** The index of the highest of the first {@code n} scores, the earliest on ties. */
  public static int best(double[] scores, int n) {
    if (n < 1 || n > scores.length) {
      throw new IllegalArgumentException("best of " + n + " needs 1 to " + scores.length + " samples");
    }
    int best = 0;
    for (int i = 0; i < n; i++) {
      if (!Double.isFinite(scores[i])) {
        throw new IllegalArgumentException("score of sample " + i + " is not finite: " + scores[i]);
      }
      if (scores[i] > scores[best]) {
        best = i;
      }
    }
    return best;
  }

  /**
   * @param selectorScores per prompt, the selector's score of each sample
   * @param trueRewards per prompt, the ground-truth reward of the same samples (the same array for the oracle)
   */
  public static Result evaluate(double[][] selectorScores, double[][] trueRewards, int n, double confidence) {
    if (selectorScores.length != trueRewards.length) {
      throw new IllegalArgumentException(selectorScores.length + " prompts of selector scores but "
          + trueRewards.length + " of rewards");
    }
    double[] kept = new double[selectorScores.length];
    double selector = 0;
    for (int p = 0; p < kept.length; p++) {
      if (selectorScores[p].length != trueRewards[p].length) {
        throw new IllegalArgumentException("prompt " + p + ": " + selectorScores[p].length + " selector scores but "
            + trueRewards[p].length + " rewards");
      }
      int b = best(selectorScores[p], n);
      kept[p] = trueRewards[p][b];
      selector += selectorScores[p][b];
    }
    return new Result(n, MeanWithInterval.of(kept, confidence), selector / kept.length, klEstimate(n));
  }
}
