package io.sparkdpo.inference;

import java.util.List;
import java.util.function.Function;

/**
 * The arrays {@code GenerationEval} takes, read off sampled prompts: rewards by [prompt][sample], log-probs by
 * [sequence][token].
 */
final class SampledArrays {
  private SampledArrays() {}

  static double[][] rewards(List<SampledPrompt> prompts) {
    double[][] out = new double[prompts.size()][];
    for (int i = 0; i < out.length; i++) {
      out[i] = prompts.get(i).continuations().stream().mapToDouble(SampledPrompt.Continuation::reward).toArray();
    }
    return out;
  }

  /** log pi of each sampled token, one row per continuation in prompt then sample order. */
  static double[][] logProbs(List<SampledPrompt> prompts) {
    return perSequence(prompts, SampledPrompt.Continuation::logProbs, "log-probs");
  }

  /** The scoring model's (pi_SFT's) log-probs of the same tokens, same order as {@link #logProbs}. */
  static double[][] scorerLogProbs(List<SampledPrompt> prompts) {
    return perSequence(prompts, SampledPrompt.Continuation::scorerLogProbs, "scorer log-probs");
  }

  private static double[][] perSequence(List<SampledPrompt> prompts,
      Function<SampledPrompt.Continuation, double[]> field, String what) {
    return prompts.stream().flatMap(p -> p.continuations().stream().map(c -> {
      double[] v = field.apply(c);
      if (v == null) {
        throw new IllegalStateException("prompt " + p.prompt().index() + ", sample " + c.sample() + " has no " + what);
      }
      return v;
    })).toArray(double[][]::new);
  }
}
