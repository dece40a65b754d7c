package io.sparkdpo.config;

/**
 * The policy model. {@code path} is a Hugging Face model folder (local, {@code hdfs:}, {@code s3a:}) or
 * {@code builtin:tiny}, the embedded default. {@code device} is {@code cpu}, {@code gpu} or {@code gpu:N}.
 * {@code dtype} is the dtype frozen weights (reference, generation, evaluation) are held in: {@code auto} (the
 * folder's config.json {@code torch_dtype}; float32 for built-in models), {@code float32}, {@code bfloat16} or
 * {@code float16}; weights trained in full stay float32 (with {@code peft} the frozen base stays in {@code dtype} and
 * only the adapters are float32). {@code saveDtype} is the dtype of saved models. {@code adapter} (null: none) is a PEFT
 * adapter folder (adapter_config.json + adapter_model.safetensors) trained on {@code path}: LoRA training continues
 * from it and DPO's reference is base + adapter; reference, generate, evaluate and logprobs run base + adapter.
 */
public record ModelSettings(String path, String device, String dtype, String saveDtype, long seed, String adapter)
    implements Validated {
  @Override
  public void validate(String prefix, Violations v) {
    v.notBlank(prefix + ".path", path);
    v.require(device != null && device.matches("cpu|gpu|gpu:\\d+"), prefix + ".device",
        "must be one of [cpu, gpu, gpu:N]", device);
    v.oneOf(prefix + ".dtype", dtype, "auto", "float32", "bfloat16", "float16");
    v.oneOf(prefix + ".save_dtype", saveDtype, "float32", "bfloat16", "float16");
    v.require(adapter == null || !adapter.isBlank(), prefix + ".adapter", "must be null (none) or a PEFT adapter folder",
        adapter == null ? null : "\"" + adapter + "\"");
  }
}
