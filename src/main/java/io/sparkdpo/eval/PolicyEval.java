package io.sparkdpo.eval;

/**
 * One policy checkpoint measured against pi_SFT on the same held-out prompts.
 *
 * @param label the run's name in tables and legends (e.g. {@code β=0.1})
 * @param beta the DPO beta it was trained with
 * @param step the training step of the checkpoint
 * @param reward mean ground-truth reward over prompts (each prompt's mean over its samples)
 * @param improvement paired difference policy - SFT of those per-prompt means
 * @param winRate prompts where the policy's mean reward beats SFT's, ties counting half
 * @param kl sampled KL(pi || pi_SFT) over the policy's samples
 */
public record PolicyEval(String label, double beta, long step, MeanWithInterval reward,
    MeanWithInterval improvement, WinRate winRate, SampledKl kl) {

  /**
   * @param policyRewards [prompt][sample] rewards of the policy's continuations
   * @param sftRewards [prompt][sample] rewards of pi_SFT's continuations for the same prompts, in the same order
   * @param policyTokenLogps [sequence][token] log pi of each token the policy sampled
   * @param sftTokenLogps [sequence][token] log pi_SFT of the same tokens
   */
  public static PolicyEval measure(String label, double beta, long step, double[][] policyRewards,
      double[][] sftRewards, double[][] policyTokenLogps, double[][] sftTokenLogps, double confidence) {
    if (policyRewards.length != sftRewards.length) {
      throw new IllegalArgumentException(label + ": policy was sampled on " + policyRewards.length
          + " prompts, SFT on " + sftRewards.length + "; both must use the same prompts");
    }
    double[] policy = perPromptMeans(policyRewards, label + " policy");
    double[] sft = perPromptMeans(sftRewards, label + " SFT");
    return new PolicyEval(label, beta, step, MeanWithInterval.of(policy, confidence),
        MeanWithInterval.ofPairedDifferences(policy, sft, confidence), WinRate.of(policy, sft, confidence),
        SampledKl.of(policyTokenLogps, sftTokenLogps, confidence));
  }

  /** Each prompt's mean reward over its samples: samples of one prompt are not independent, prompts are. */
  public static double[] perPromptMeans(double[][] rewards, String what) {
    double[] means = new double[rewards.length];
    for (int i = 0; i < rewards.length; i++) {
      if (rewards[i].length == 0) {
        throw new IllegalArgumentException(what + ": prompt " + i + " has no samples");
      }
      double sum = 0;
      for (int k = 0; k < rewards[i].length; k++) {
        if (!Double.isFinite(rewards[i][k])) {
          throw new IllegalArgumentException(what + ": prompt " + i + ", sample " + k + " has reward "
              + rewards[i][k]);
        }
        sum += rewards[i][k];
      }
      means[i] = sum / rewards[i].length;
    }
    return means;
  }

  /** The computed conclusion of this comparison. */
  public Verdict verdict() {
    return Verdict.of(this);
  }
}
