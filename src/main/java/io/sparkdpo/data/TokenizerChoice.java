package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.io.Storage;
import java.io.IOException;

/**
 * Which tokenizer prepare uses, decided on the driver from {@code prepare.tokenizer} and {@code model.path}.
 * {@code auto} takes the model's own tokenizer when {@code model.path} is a folder holding tokenizer.json (local,
 * hdfs:, s3a:), else the built-in one; {@code builtin} and explicit paths are taken as given. Then
 * {@link #requireFitsModel} makes a mismatch fail before any Spark job: ids the model's embedding cannot hold.
 *
 * @param spec what to load: {@code builtin}, a tokenizer.json, or a folder holding one
 * @param reason one line for the log and the manifest: why this tokenizer
 */
public record TokenizerChoice(String spec, String reason) {
  public static final String AUTO = "auto";
  private static final ObjectMapper JSON = new ObjectMapper();

  public static TokenizerChoice choose(String setting, String modelPath, Storage storage) {
    if (!AUTO.equals(setting)) {
      return new TokenizerChoice(setting, "prepare.tokenizer=" + setting);
    }
    if (isBuiltinModel(modelPath)) {
      return new TokenizerChoice(TokenizerFiles.BUILTIN, "auto: model.path " + modelPath + " is built in, so is its "
          + "tokenizer");
    }
    if (storage.exists(Storage.join(modelPath, "tokenizer.json"))) {
      return new TokenizerChoice(modelPath, "auto: the tokenizer.json of model.path " + modelPath);
    }
    return new TokenizerChoice(TokenizerFiles.BUILTIN, "auto: model.path " + modelPath + " has no tokenizer.json, "
        + "so the built-in tokenizer (set prepare.tokenizer to the model's tokenizer if it has one elsewhere)");
  }

  /**
   * Fails when {@code model.path}'s config.json has a {@code vocab_size} smaller than the tokenizer's vocabulary:
   * ids at or above it would index past the embedding. A built-in model, or a folder without config.json or
   * vocab_size, is not checked here.
   */
  public static void requireFitsModel(TextTokenizer tokenizer, String modelPath, Storage storage) {
    if (isBuiltinModel(modelPath)) {
      return;
    }
    String configPath = Storage.join(modelPath, "config.json");
    if (!storage.exists(configPath)) {
      return;
    }
    JsonNode config;
    try {
      config = JSON.readTree(storage.readBytes(configPath));
    } catch (IOException e) {
      throw new IllegalArgumentException("model.path: " + configPath + " is not valid JSON: " + e.getMessage(), e);
    }
    JsonNode vocab = config.has("vocab_size") ? config.get("vocab_size") : config.path("text_config").get("vocab_size");
    if (vocab == null || !vocab.canConvertToInt()) {
      return;
    }
    if (vocab.asInt() < tokenizer.vocabSize()) {
      throw new IllegalArgumentException("tokenizer '" + tokenizer.spec() + "' has " + tokenizer.vocabSize()
          + " token ids, but model " + modelPath + " (config.json vocab_size " + vocab.asInt() + ") has embeddings for "
          + "only " + vocab.asInt() + ": prepared ids could overflow the embedding. Use the model's own tokenizer "
          + "(prepare.tokenizer=auto or " + modelPath + ") or the model this tokenizer belongs to");
    }
  }

  private static boolean isBuiltinModel(String modelPath) {
    return modelPath.startsWith("builtin:");
  }
}
