package io.sparkdpo.config;

/**
 * Settings of the {@code reference} stage: the reference model's log-probs of every pair's chosen and rejected
 * response, computed once by Spark executors and stored with the data. {@code model} and {@code device} fall back
 * to the {@code model:} section when null (the reference is the policy DPO starts from). {@code batchTokens} bounds
 * the padded tokens of one forward pass (chosen and rejected of a pair run together); each task reads
 * {@code sortWindow} pairs ahead and sorts them by length so batches carry little padding.
 */
public record ReferenceSettings(
    String model,
    String device,
    int batchTokens,
    int sortWindow,
    int partitions) implements Validated, ExecutorModelSettings {
  @Override
  public void validate(String prefix, Violations v) {
    validateModel(prefix, v);
    v.positive(prefix + ".batch_tokens", batchTokens);
    v.positive(prefix + ".sort_window", sortWindow);
    v.nonNegative(prefix + ".partitions", partitions);
  }
}
