package io.sparkdpo.config;

import java.util.List;

/**
 * Settings of the {@code generate} stage (the controlled-sentiment experiment's data): prompts are the first
 * {@code promptMinWords..promptMaxWords} words of paragraphs cut from {@code prompts} (text files or folders, one
 * paragraph per line, at least {@code minParagraphWords} words), {@code samplesPerPrompt} continuations are sampled
 * from pi_SFT ({@code model}, else {@code model.path}) on executors, and {@code evaluate.reward} labels them.
 * {@code evalPrompts} names held-out text to cut {@code evaluate.num_prompts} evaluation prompts from, disjoint
 * from the training prompts. {@code promptsPerBatch} only groups work: results do not depend on it. {@code labeler}:
 * a reward model folder (or a reward function's name) that labels the pairs instead of {@code evaluate.reward}
 * (texts tokenised as {@code score.prepared} / {@code prepare:} say, as {@code spark-dpo score} does).
 */
public record GenerateSettings(
    String model,
    String device,
    List<String> prompts,
    List<String> evalPrompts,
    int numPrompts,
    int promptMinWords,
    int promptMaxWords,
    int minParagraphWords,
    int samplesPerPrompt,
    int maxNewTokens,
    double temperature,
    int topK,
    double topP,
    long seed,
    int promptsPerBatch,
    int partitions,
    boolean writeSamples,
    String labeler) implements Validated, ExecutorModelSettings {

  public GenerateSettings {
    prompts = prompts == null ? List.of() : List.copyOf(prompts);
    evalPrompts = evalPrompts == null ? List.of() : List.copyOf(evalPrompts);
  }

  @Override
  public void validate(String prefix, Violations v) {
    validateModel(prefix, v);
    v.positive(prefix + ".num_prompts", numPrompts);
    v.positive(prefix + ".prompt_min_words", promptMinWords);
    v.require(promptMaxWords >= promptMinWords, prefix + ".prompt_max_words",
        "must be >= prompt_min_words (" + promptMinWords + ")", promptMaxWords);
    v.require(minParagraphWords > promptMaxWords, prefix + ".min_paragraph_words",
        "must be > prompt_max_words (" + promptMaxWords + "), so every prompt is a strict prefix", minParagraphWords);
    // Labelling needs a best and a worst continuation.
    v.require(samplesPerPrompt >= 2, prefix + ".samples_per_prompt", "must be >= 2", samplesPerPrompt);
    v.positive(prefix + ".max_new_tokens", maxNewTokens);
    v.positive(prefix + ".temperature", temperature);
    v.nonNegative(prefix + ".top_k", topK);
    v.require(topP > 0 && topP <= 1, prefix + ".top_p", "must be in (0.0, 1.0]", topP);
    v.positive(prefix + ".prompts_per_batch", promptsPerBatch);
    v.nonNegative(prefix + ".partitions", partitions);
    v.require(labeler == null || !labeler.isBlank(), prefix + ".labeler",
        "must be null (evaluate.reward labels) or a reward model folder", labeler);
  }
}
