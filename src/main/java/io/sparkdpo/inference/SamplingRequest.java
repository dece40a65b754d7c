package io.sparkdpo.inference;

import io.sparkdpo.data.TokenizerFiles;
import io.sparkdpo.model.SamplingSettings;
import java.io.Serializable;

/**
 * What {@link SamplingJob} runs on executors: sample {@code samplesPerPrompt} continuations per prompt from
 * {@code model} with {@code sampling} (its seed is the base of every row's seed), decode them with
 * {@code tokenizer}, and optionally score their tokens under a second model ({@code scorer}, teacher-forced: what the
 * sampled KL estimate needs) and their text with a reward ({@code reward}, a {@code RewardFunctions} spec).
 * {@code promptsPerBatch} prompts are decoded together; {@code partitions} 0 means Spark's default parallelism.
 */
public record SamplingRequest(ModelSpec model, ModelSpec scorer, TokenizerFiles tokenizer, SamplingSettings sampling,
    int samplesPerPrompt, int promptsPerBatch, String reward, int partitions) implements Serializable {
  public SamplingRequest {
    if (samplesPerPrompt < 1 || promptsPerBatch < 1 || partitions < 0) {
      throw new IllegalArgumentException("samples per prompt and prompts per batch must be >= 1, partitions >= 0");
    }
  }
}
