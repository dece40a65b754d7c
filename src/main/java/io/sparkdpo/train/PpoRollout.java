package io.sparkdpo.train;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A rollout batch turned into PPO's training examples, TRL 0.22.2's steps 4 to 6 in {@code PPOTrainer.train}:
 * <ol>
 *   <li>per response token t, the KL penalty against pi_SFT: {@code r_t = -kl_coef * kl_t}, kl_t the k1 or k3
 *       estimate from the sampling policy's and the reference's log-probs of the sampled token;</li>
 *   <li>the score (reward model or ground truth) added to the last token's reward, the InstructGPT recipe. TRL adds it
 *       one position later (after the stop token, a padding position whose value it also trains); here the episode
 *       ends with its last token, so values, rewards and losses cover response tokens only;</li>
 *   <li>with {@code whiten_rewards}, the rewards whitened over the batch without shifting their mean;</li>
 *   <li>GAE ({@link Gae}) for advantages and returns, then the advantages whitened over the batch ({@link Whitening}).</li>
 * </ol>
 * Metrics under TRL's names: {@code objective/kl} (mean over responses of the summed per-token kl),
 * {@code objective/entropy} (mean summed {@code -log pi}: the sampled estimate), {@code objective/non_score_reward}
 * (mean summed penalty), {@code objective/scores}, {@code objective/rlhf_reward} (score plus penalty).
 */
public record PpoRollout(List<PpoSample> samples, double[][] kl, double[][] rewards, Map<String, Double> metrics) {
  public static final String KL = "objective/kl";
  public static final String ENTROPY = "objective/entropy";
  public static final String NON_SCORE_REWARD = "objective/non_score_reward";
  public static final String RLHF_REWARD = "objective/rlhf_reward";
  public static final String SCORES = "objective/scores";

  /**
   * @param ids one id per response (named in errors and refused steps)
   * @param logProbs the sampling policy's log-prob of each response token (at the sampling temperature)
   * @param refLogProbs pi_SFT's log-prob of the same tokens, same temperature
   * @param values the value head's V at each response token's position
   * @param scores one reward per response
   */
  public static PpoRollout of(List<String> ids, List<int[]> prompts, List<int[]> responses, double[][] logProbs,
      double[][] refLogProbs, double[][] values, double[] scores, PpoHyper hyper) {
    int n = ids.size();
    if (prompts.size() != n || responses.size() != n || logProbs.length != n || refLogProbs.length != n
        || values.length != n || scores.length != n) {
      throw new IllegalArgumentException("rollout of " + n + " ids has " + prompts.size() + " prompts, "
          + responses.size() + " responses, " + logProbs.length + " log-prob rows, " + refLogProbs.length
          + " reference rows, " + values.length + " value rows and " + scores.length + " scores");
    }
    double[][] kl = new double[n][];
    double[][] rewards = new double[n][];
    double klSum = 0;
    double entropySum = 0;
    double penaltySum = 0;
    double scoreSum = 0;
    for (int i = 0; i < n; i++) {
      int len = responses.get(i).length;
      if (len == 0 || logProbs[i].length != len || refLogProbs[i].length != len || values[i].length != len) {
        throw new IllegalArgumentException("response " + ids.get(i) + " of " + len + " tokens has "
            + logProbs[i].length + " log-probs, " + refLogProbs[i].length + " reference log-probs and "
            + values[i].length + " values");
      }
      if (!Double.isFinite(scores[i])) {
        throw new IllegalArgumentException("response " + ids.get(i) + ": score " + scores[i] + " is not finite");
      }
      kl[i] = new double[len];
      rewards[i] = new double[len];
      for (int t = 0; t < len; t++) {
        kl[i][t] = hyper.klEstimator().of(logProbs[i][t], refLogProbs[i][t]);
        rewards[i][t] = -hyper.klCoef() * kl[i][t];
        klSum += kl[i][t];
        entropySum -= logProbs[i][t];
        penaltySum += rewards[i][t];
      }
      rewards[i][len - 1] += scores[i];
      scoreSum += scores[i];
    }
    double[][] shaped = hyper.whitenRewards() ? Whitening.whiten(rewards, false) : rewards;
    Gae.Result gae = Gae.compute(shaped, values, hyper.gamma(), hyper.lam());
    double[][] advantages = Whitening.whiten(gae.advantages(), true);
    List<PpoSample> samples = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      samples.add(new PpoSample(ids.get(i), prompts.get(i), responses.get(i), logProbs[i], values[i],
          advantages[i], gae.returns()[i]));
    }
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put(KL, klSum / n);
    metrics.put(ENTROPY, entropySum / n);
    metrics.put(NON_SCORE_REWARD, penaltySum / n);
    metrics.put(RLHF_REWARD, penaltySum / n + scoreSum / n);
    metrics.put(SCORES, scoreSum / n);
    return new PpoRollout(List.copyOf(samples), kl, shaped, metrics);
  }
}
