package io.sparkdpo.reference;

import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelFolder;
import java.io.Serializable;

/**
 * Which model an executor must load, as the driver resolved it: the path ({@code builtin:tiny} or a Hugging Face
 * folder on any Hadoop file system), the seed of a built-in model, the device spec ({@code cpu}, {@code gpu} for the
 * GPU Spark assigned the task, or {@code gpu:N}), and the fingerprint the driver computed. Executors cache models by
 * fingerprint and refuse a folder whose fingerprint changed after the driver planned the job.
 */
public record ModelSpec(String path, long builtinSeed, String device, String fingerprint) implements Serializable {

  /**
   * Resolves the fingerprint on the driver (a folder's files are hashed, not loaded), after checking the folder's
   * config.json: a config the executors would refuse fails here, before any Spark job.
   */
  public static ModelSpec resolve(String path, long builtinSeed, String device, Storage storage) {
    ModelFolder.configOf(storage, path);
    return new ModelSpec(path, builtinSeed, device, CausalLM.fingerprintOf(path, storage, builtinSeed));
  }

  /** The first 16 hex digits of the fingerprint, for messages. */
  public String shortFingerprint() {
    return fingerprint.substring(0, Math.min(16, fingerprint.length()));
  }
}
