package io.sparkdpo.config;

/**
 * Settings of the {@code evaluate} stage's generation-based evaluation: continuations are sampled from the policy
 * and from pi_SFT for held-out prompts and scored by an independent reward. {@code reward} is {@code afinn}, {@code
 * lexicon:PATH} or the class name of a {@code io.sparkdpo.eval.RewardFunction}; {@code topK} 0 and {@code topP} 1.0
 * switch those filters off. Sampling from pi itself (temperature 1, no filters) is what the sampled-KL estimate
 * assumes.
 * {@code checkpoints}: besides each run's final model, evaluate its earlier committed checkpoints.
 */
public record EvaluateSettings(
    String reward,
    int numPrompts,
    int samplesPerPrompt,
    int maxNewTokens,
    double temperature,
    int topK,
    double topP,
    long seed,
    double confidenceLevel,
    boolean checkpoints) implements Validated {

  /** {@code afinn}, {@code lexicon:} followed by a path, or a fully-qualified Java class name. */
  private static final String REWARD_SPEC =
      "afinn|lexicon:\\S.*|[\\p{L}_$][\\p{L}\\p{N}_$]*(\\.[\\p{L}_$][\\p{L}\\p{N}_$]*)+";

  @Override
  public void validate(String prefix, Violations v) {
    v.require(reward != null && reward.matches(REWARD_SPEC), prefix + ".reward",
        "must be afinn, lexicon:PATH or a fully-qualified class name implementing io.sparkdpo.eval.RewardFunction",
        reward);
    // Two prompts at least: a confidence interval needs a sample variance.
    v.require(numPrompts >= 2, prefix + ".num_prompts", "must be >= 2", numPrompts);
    v.positive(prefix + ".samples_per_prompt", samplesPerPrompt);
    v.positive(prefix + ".max_new_tokens", maxNewTokens);
    // Greedy decoding (temperature 0) would give identical samples and a meaningless KL estimate.
    v.positive(prefix + ".temperature", temperature);
    v.nonNegative(prefix + ".top_k", topK);
    v.require(topP > 0 && topP <= 1, prefix + ".top_p", "must be in (0.0, 1.0]", topP);
    v.require(confidenceLevel > 0 && confidenceLevel < 1, prefix + ".confidence_level", "must be in (0.0, 1.0)",
        confidenceLevel);
  }
}
