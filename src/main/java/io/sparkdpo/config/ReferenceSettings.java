package io.sparkdpo.config;

/**
 * Settings of the {@code reference} stage: the reference model's log-probs of every pair's chosen and rejected
 * response, computed once by Spark executors and stored with the data. {@code model} and {@code device} fall back
 * to the {@code model:} section when null (the reference is the policy DPO starts from). {@code dtype} is the dtype the
 * reference weights are held and computed in, for the reference stage and DPO's in-loop reference alike: float32 by
 * default because the policy trains in float32, and DPO's implicit rewards are differences of the two models'
 * log-probs, so at step 0 (same weights) they are exactly zero only when both compute the same way; bfloat16 halves
 * the frozen copy and speeds up the stage at the price of bf16 rounding in every reward. {@code batchTokens} bounds
 * the padded tokens of one forward pass (chosen and rejected of a pair run together); each task reads
 * {@code sortWindow} pairs ahead and sorts them by length so batches carry little padding.
 */
public record ReferenceSettings(
    String model,
    String device,
    String dtype,
    int batchTokens,
    int sortWindow,
    int partitions) implements Validated, ExecutorModelSettings {
  @Override
  public void validate(String prefix, Violations v) {
    validateModel(prefix, v);
    v.oneOf(prefix + ".dtype", dtype, "auto", "float32", "bfloat16", "float16");
    v.positive(prefix + ".batch_tokens", batchTokens);
    v.positive(prefix + ".sort_window", sortWindow);
    v.nonNegative(prefix + ".partitions", partitions);
  }
}
