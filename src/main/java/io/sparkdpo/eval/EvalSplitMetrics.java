package io.sparkdpo.eval;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * DPO's preference metrics of a policy on held-out pairs, from summed log-probs of the chosen and rejected responses
 * under the policy and the reference, with TRL's names and definitions: implicit rewards beta * (log pi - log ref),
 * their margin, the share of pairs whose chosen reward is strictly higher, and the sigmoid loss with label smoothing
 * {@code -(1 - eps) log sigmoid(m) - eps log sigmoid(-m)} of the margin m (the loss of {@code loss_type: sigmoid};
 * other loss types report NaN).
 */
public record EvalSplitMetrics(int pairs, double loss, double accuracy, double margin, double chosenReward,
    double rejectedReward) {

  public static EvalSplitMetrics of(double beta, double labelSmoothing, boolean sigmoidLoss, double[] policyChosen,
      double[] policyRejected, double[] refChosen, double[] refRejected) {
    int n = policyChosen.length;
    if (policyRejected.length != n || refChosen.length != n || refRejected.length != n) {
      throw new IllegalArgumentException("log-prob arrays of different lengths: " + n + ", " + policyRejected.length
          + ", " + refChosen.length + ", " + refRejected.length);
    }
    if (n == 0) {
      throw new IllegalArgumentException("no eval pairs to measure");
    }
    double loss = 0;
    double correct = 0;
    double chosen = 0;
    double rejected = 0;
    for (int i = 0; i < n; i++) {
      double c = beta * (policyChosen[i] - refChosen[i]);
      double r = beta * (policyRejected[i] - refRejected[i]);
      double m = c - r;
      loss += (1 - labelSmoothing) * softplus(-m) + labelSmoothing * softplus(m);
      correct += c > r ? 1 : 0;
      chosen += c;
      rejected += r;
    }
    return new EvalSplitMetrics(n, sigmoidLoss ? loss / n : Double.NaN, correct / n, (chosen - rejected) / n,
        chosen / n, rejected / n);
  }

  /** -log sigmoid(-x) = log(1 + e^x), without overflow. */
  static double softplus(double x) {
    return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
  }

  /** With the trainer's metric names, as metrics.json shows them. */
  public Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("pairs", pairs);
    m.put("eval/loss", Double.isNaN(loss) ? null : loss);
    m.put("eval/rewards/accuracies", accuracy);
    m.put("eval/rewards/margins", margin);
    m.put("eval/rewards/chosen", chosenReward);
    m.put("eval/rewards/rejected", rejectedReward);
    return m;
  }
}
