package io.sparkdpo.inference;

import io.sparkdpo.data.TextPrompts;
import java.io.Serializable;
import java.util.List;

/**
 * A prompt and the continuations sampled for it, in sample order.
 *
 * @param prompt the prompt as cut
 * @param continuations sample 0 .. K-1
 */
public record SampledPrompt(TextPrompts.Prompt prompt, List<Continuation> continuations) implements Serializable {
  public SampledPrompt {
    continuations = List.copyOf(continuations);
  }

  /**
   * One continuation.
   *
   * @param sample its number among the prompt's samples (it decides the random stream with the prompt's text)
   * @param tokens every sampled token, the stop token included when one ended it
   * @param text the decoded continuation (stop token excluded)
   * @param stopped whether a stop token (EOS) ended it rather than the token limit
   * @param logProbs log pi(token | prompt, earlier tokens) of each sampled token under the sampling model's own,
   *     unfiltered distribution
   * @param scorerLogProbs the same tokens' teacher-forced log-probs under the scoring model (pi_SFT when evaluating a
   *     policy), or null when none was asked for
   * @param reward the ground-truth reward of {@code text} after the prompt, or NaN when none was asked for
   */
  public record Continuation(int sample, int[] tokens, String text, boolean stopped, double[] logProbs,
      double[] scorerLogProbs, double reward) implements Serializable {}
}
