package io.sparkdpo.inference;

import ai.djl.ndarray.types.DataType;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.AdapterFolder;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.ModelFolder;
import java.io.Serializable;

/**
 * Which model an executor must load, as the driver resolved it: the path ({@code builtin:tiny} or a Hugging Face
 * folder on any Hadoop file system), the seed of a built-in model, the device spec ({@code cpu}, {@code gpu} for the
 * GPU Spark assigned the task, or {@code gpu:N}), the fingerprint the driver computed, and the dtype of the weights
 * ({@code float32}, {@code bfloat16}, {@code float16}, or {@code auto}: config.json's), and a PEFT adapter folder
 * applied to it ({@code adapter}, null: none; the fingerprint is then base + adapter's). Executors cache models by
 * fingerprint and dtype and refuse a folder whose fingerprint changed after the driver planned the job.
 */
public record ModelSpec(String path, long builtinSeed, String device, String fingerprint, String dtype,
    String adapter) implements Serializable {

  /** A spec in the dtype config.json names. */
  public ModelSpec(String path, long builtinSeed, String device, String fingerprint) {
    this(path, builtinSeed, device, fingerprint, "auto");
  }

  /** A spec without adapter. */
  public ModelSpec(String path, long builtinSeed, String device, String fingerprint, String dtype) {
    this(path, builtinSeed, device, fingerprint, dtype, null);
  }

  /** Resolves the fingerprint on the driver (a folder's files are hashed, not loaded), in config.json's dtype. */
  public static ModelSpec resolve(String path, long builtinSeed, String device, Storage storage) {
    return resolve(path, builtinSeed, device, "auto", storage);
  }

  /**
   * Resolves fingerprint and dtype ({@code model.dtype}; {@code auto} read from config.json) on the driver (a folder's
   * files are hashed, not loaded), after checking the folder's config.json: a config the executors would refuse
   * fails here, before any Spark job.
   */
  public static ModelSpec resolve(String path, long builtinSeed, String device, String dtype, Storage storage) {
    return resolve(path, null, builtinSeed, device, dtype, storage);
  }

  /**
   * As {@link #resolve(String, long, String, String, Storage)} with a PEFT adapter folder on top ({@code adapter},
   * null: none): its config is checked and its files hashed here, and the fingerprint is base + adapter's
   * ({@link AdapterFolder#withBase}).
   */
  public static ModelSpec resolve(String path, String adapter, long builtinSeed, String device, String dtype,
      Storage storage) {
    ModelConfig config = ModelFolder.configOf(storage, path);
    String fingerprint = CausalLM.fingerprintOf(path, storage, builtinSeed);
    if (adapter != null) {
      AdapterFolder.settings(storage, adapter);
      fingerprint = AdapterFolder.withBase(fingerprint, AdapterFolder.fingerprint(storage, adapter));
    }
    DataType resolved = CausalLM.resolveDtype(dtype, path.startsWith("builtin:") ? null : config);
    return new ModelSpec(path, builtinSeed, device, fingerprint, resolved.toString(), adapter);
  }

  /** The dtype executors load the weights in (null: config.json's). */
  public DataType loadDtype() {
    return dtype.equals("auto") ? null : CausalLM.resolveDtype(dtype, null);
  }

  /** The first 16 hex digits of the fingerprint, for messages. */
  public String shortFingerprint() {
    return fingerprint.substring(0, Math.min(16, fingerprint.length()));
  }
}
