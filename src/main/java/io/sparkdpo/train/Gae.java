package io.sparkdpo.train;

/**
 * Generalised advantage estimation over one response, token by token from the end (TRL's reversed loop):
 * <pre>
 *   delta_t = r_t + gamma V_{t+1} - V_t          V_T = 0 after the last token (the episode ends there)
 *   A_t     = delta_t + gamma lam A_{t+1}        A_T = 0
 *   return_t = A_t + V_t                         the value loss's target
 * </pre>
 * In float64 on the host: rollouts are small and the value is exact and the same on every replica.
 */
public final class Gae {
  private Gae() {}

  /** Advantages and returns, one row per response. */
  public record Result(double[][] advantages, double[][] returns) {}

  /**
   * @param rewards per response, per token (the KL penalty, the score added at the last token)
   * @param values V at each token's position, same shape
   */
  public static Result compute(double[][] rewards, double[][] values, double gamma, double lam) {
    if (rewards.length != values.length) {
      throw new IllegalArgumentException(rewards.length + " reward rows but " + values.length + " value rows");
    }
    double[][] advantages = new double[rewards.length][];
    double[][] returns = new double[rewards.length][];
    for (int i = 0; i < rewards.length; i++) {
      double[] r = rewards[i];
      double[] v = values[i];
      if (r.length != v.length) {
        throw new IllegalArgumentException("response " + i + ": " + r.length + " rewards but " + v.length
            + " values");
      }
      double[] a = new double[r.length];
      double[] ret = new double[r.length];
      double next = 0;
      double lastGaeLam = 0;
      for (int t = r.length - 1; t >= 0; t--) {
        double delta = r[t] + gamma * next - v[t];
        lastGaeLam = delta + gamma * lam * lastGaeLam;
        a[t] = lastGaeLam;
        ret[t] = lastGaeLam + v[t];
        next = v[t];
      }
      advantages[i] = a;
      returns[i] = ret;
    }
    return new Result(advantages, returns);
  }
}
