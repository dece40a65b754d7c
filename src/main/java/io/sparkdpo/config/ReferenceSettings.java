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
    int partitions) implements Validated {

  /** The reference model: {@code reference.model}, else {@code model.path}. */
  public String modelOr(ModelSettings fallback) {
    return model != null ? model : fallback.path();
  }

  /** The device: {@code reference.device}, else {@code model.device}. */
  public String deviceOr(ModelSettings fallback) {
    return device != null ? device : fallback.device();
  }

  @Override
  public void validate(String prefix, Violations v) {
    v.require(model == null || !model.isBlank(), prefix + ".model", "must be null (model.path) or a model", model);
    v.require(device == null || device.matches("cpu|gpu|gpu:\\d+"), prefix + ".device",
        "must be null (model.device) or one of [cpu, gpu, gpu:N]", device);
    v.positive(prefix + ".batch_tokens", batchTokens);
    v.positive(prefix + ".sort_window", sortWindow);
    v.nonNegative(prefix + ".partitions", partitions);
  }
}
