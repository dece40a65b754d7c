package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * Settings of {@code spark-dpo score} and {@code spark-dpo best-of-n}: a selector scores (prompt, continuation) texts
 * on executors. The selector is a reward model folder ({@code model}, what {@code spark-dpo reward} exports as
 * {@code RUN/model}), or, when that is null, a {@code RewardFunction} ({@code reward}, else {@code evaluate.reward})
 * labelled as an oracle. A reward model sees each text tokenised as its training data was: the chat template, EOS
 * and truncation of the prepared folder {@code prepared} (its manifest), else of the {@code prepare:} section.
 * {@code relabel} also writes preference pairs from the scores. Best-of-n samples {@code max(best_of_n)}
 * continuations per held-out prompt ({@code prompts}: {@code eval_prompts.jsonl} files as {@code generate} writes
 * them; the first {@code evaluate.num_prompts}) from pi_SFT ({@code model.path}) with {@code evaluate:}'s sampling
 * settings, and keeps the selector's best of the first n for each n.
 */
public record ScoreSettings(
    String model,
    String device,
    String reward,
    String input,
    String outputDir,
    String prepared,
    boolean relabel,
    int batchTokens,
    int partitions,
    List<String> prompts,
    List<Integer> bestOfN,
    @JsonProperty("best_of_n_output_dir") String bestOfNOutputDir) implements Validated, ExecutorModelSettings {

  public ScoreSettings {
    prompts = prompts == null ? List.of() : List.copyOf(prompts);
    bestOfN = bestOfN == null ? List.of() : List.copyOf(bestOfN);
  }

  /** The reward function used when no reward model is set: {@code reward}, else {@code evaluate.reward}. */
  public String rewardOr(EvaluateSettings evaluate) {
    return reward != null ? reward : evaluate.reward();
  }

  /** The samples drawn per prompt for best-of-n: the largest n. */
  public int bestOfNSamples() {
    return bestOfN.stream().mapToInt(Integer::intValue).max().orElse(0);
  }

  @Override
  public void validate(String prefix, Violations v) {
    validateModel(prefix, v);
    v.require(reward == null || !reward.isBlank(), prefix + ".reward", "must be null (evaluate.reward) or a reward",
        reward);
    v.require(input == null || !input.isBlank(), prefix + ".input", "must be null or a path", input);
    v.notBlank(prefix + ".output_dir", outputDir);
    v.require(prepared == null || !prepared.isBlank(), prefix + ".prepared",
        "must be null (the prepare: section) or a prepared folder", prepared);
    v.positive(prefix + ".batch_tokens", batchTokens);
    v.nonNegative(prefix + ".partitions", partitions);
    v.require(!bestOfN.isEmpty(), prefix + ".best_of_n", "must list at least one n", bestOfN);
    for (Integer n : bestOfN) {
      v.require(n != null && n >= 1, prefix + ".best_of_n", "every n must be >= 1", bestOfN);
    }
    v.require(bestOfN.stream().distinct().count() == bestOfN.size(), prefix + ".best_of_n", "must not repeat an n",
        bestOfN);
    v.notBlank(prefix + ".best_of_n_output_dir", bestOfNOutputDir);
  }
}
