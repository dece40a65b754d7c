package io.sparkdpo.config;

/**
 * The policy model. {@code path} is a Hugging Face model folder (local, {@code hdfs:}, {@code s3a:}) or
 * {@code builtin:tiny}, the embedded default. {@code device} is {@code cpu}, {@code gpu} or {@code gpu:N}.
 */
public record ModelSettings(String path, String device, String saveDtype, long seed) implements Validated {
  @Override
  public void validate(String prefix, Violations v) {
    v.notBlank(prefix + ".path", path);
    v.require(device != null && device.matches("cpu|gpu|gpu:\\d+"), prefix + ".device",
        "must be one of [cpu, gpu, gpu:N]", device);
    v.oneOf(prefix + ".save_dtype", saveDtype, "float32", "bfloat16");
  }
}
