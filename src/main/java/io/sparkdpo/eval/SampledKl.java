package io.sparkdpo.eval;

/**
 * The Monte-Carlo estimate of KL(pi || pi_SFT) from continuations sampled from pi: for each sampled token, log
 * pi(token) - log pi_SFT(token), both given the same prefix. Its expectation is the KL only when the tokens were
 * drawn from pi itself (temperature 1, no top-k or top-p filter), and single sequences can be negative.
 *
 * @param perToken mean of log pi - log pi_SFT over all sampled tokens (nats per token)
 * @param perSequence mean over sequences of the per-sequence sums (nats per continuation, the DPO paper's x-axis),
 *     with its confidence interval
 * @param tokens how many sampled tokens the estimate covers
 */
public record SampledKl(double perToken, MeanWithInterval perSequence, long tokens) {

  /**
   * @param policyLogps per sampled sequence, the policy's log-probability of each sampled token
   * @param referenceLogps the same tokens' log-probabilities under pi_SFT, same shape
   */
  public static SampledKl of(double[][] policyLogps, double[][] referenceLogps, double confidence) {
    double[] sums = sequenceSums(policyLogps, referenceLogps);
    long tokens = 0;
    double total = 0;
    for (int s = 0; s < sums.length; s++) {
      tokens += policyLogps[s].length;
      total += sums[s];
    }
    if (tokens == 0) {
      throw new IllegalArgumentException("no sampled tokens: every sequence is empty");
    }
    return new SampledKl(total / tokens, MeanWithInterval.of(sums, confidence), tokens);
  }

  /** Per sequence s: the sum over its tokens of log pi - log pi_SFT. */
  public static double[] sequenceSums(double[][] policyLogps, double[][] referenceLogps) {
    if (policyLogps.length != referenceLogps.length) {
      throw new IllegalArgumentException("policy and reference log-probs differ in sequence count: "
          + policyLogps.length + " and " + referenceLogps.length);
    }
    double[] sums = new double[policyLogps.length];
    for (int s = 0; s < policyLogps.length; s++) {
      double[] p = policyLogps[s];
      double[] q = referenceLogps[s];
      if (p.length != q.length) {
        throw new IllegalArgumentException("sequence " + s + ": policy has " + p.length
            + " token log-probs, reference " + q.length);
      }
      double sum = 0;
      for (int t = 0; t < p.length; t++) {
        if (!(p[t] <= 0) || !(q[t] <= 0) || Double.isInfinite(p[t]) || Double.isInfinite(q[t])) {
          throw new IllegalArgumentException("sequence " + s + ", token " + t
              + ": log-probs must be finite and <= 0, got policy " + p[t] + ", reference " + q[t]);
        }
        sum += p[t] - q[t];
      }
      sums[s] = sum;
    }
    return sums;
  }
}
