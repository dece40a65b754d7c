package io.sparkdpo.config;

/**
 * A section whose stage runs a model on executors ({@code reference:}, {@code generate:}): its {@code model} and
 * {@code device} fall back to the {@code model:} section when null.
 */
public interface ExecutorModelSettings {
  String model();

  String device();

  /** The section's model, else {@code model.path}. */
  default String modelOr(ModelSettings fallback) {
    return model() != null ? model() : fallback.path();
  }

  /** The section's device, else {@code model.device}. */
  default String deviceOr(ModelSettings fallback) {
    return device() != null ? device() : fallback.device();
  }

  /** Checks {@code model} and {@code device}: null, or a model path and cpu, gpu or gpu:N. */
  default void validateModel(String prefix, Violations v) {
    v.require(model() == null || !model().isBlank(), prefix + ".model", "must be null (model.path) or a model",
        model());
    v.require(device() == null || device().matches("cpu|gpu|gpu:\\d+"), prefix + ".device",
        "must be null (model.device) or one of [cpu, gpu, gpu:N]", device());
  }
}
