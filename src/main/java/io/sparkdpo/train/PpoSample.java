package io.sparkdpo.train;

/**
 * One response of a rollout batch, ready for PPO's epochs: what was sampled and, per response token, the sampling
 * policy's log-prob and value (the "old" ones the ratio and the value clip refer to), the whitened advantage and
 * the return. Arrays are indexed by response token.
 */
public record PpoSample(String id, int[] prompt, int[] response, double[] oldLogProbs, double[] oldValues,
    double[] advantages, double[] returns) {
  public PpoSample {
    int n = response.length;
    if (n == 0 || oldLogProbs.length != n || oldValues.length != n || advantages.length != n
        || returns.length != n) {
      throw new IllegalArgumentException("sample " + id + ": response of " + n + " tokens needs as many log-probs ("
          + oldLogProbs.length + "), values (" + oldValues.length + "), advantages (" + advantages.length
          + ") and returns (" + returns.length + ")");
    }
  }
}
