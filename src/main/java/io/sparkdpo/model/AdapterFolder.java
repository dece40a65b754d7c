package io.sparkdpo.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A PEFT LoRA adapter folder, as PEFT's {@code save_pretrained} writes it and {@code PeftModel.from_pretrained}
 * reads it: {@value #CONFIG} (LoraConfig's fields) and {@value #WEIGHTS} with keys as
 * {@code get_peft_model_state_dict} names them, the adapter name removed:
 * {@code base_model.model.<module>.lora_A.weight} / {@code .lora_B.weight}, and a module saved whole as
 * {@code base_model.model.<module>.weight}. What the model computes from it is {@link CausalLM}'s part; this class
 * reads, checks and writes the files. A driver uses its public part before any executor loads the adapter: the
 * settings and the fingerprint from the files alone ({@link #fingerprint} equals {@link CausalLM#adapterFingerprint()}
 * after {@link CausalLM#loadAdapter}), and {@link #withBase}, which names base + adapter as one model.
 *
 * <p>Task types: {@code CAUSAL_LM} for a causal LM, {@code SEQ_CLS} for a reward model
 * ({@code *ForSequenceClassification}). PEFT's {@code PeftModelForSequenceClassification} adds its classifier module
 * names, {@code classifier} and {@code score}, to {@code modules_to_save} and trains them whole, so a SEQ_CLS folder
 * lists them and holds {@code base_model.model.score.weight}. Here they are implied by the task: the settings read from
 * such a folder list only the other modules saved whole, and writing a SEQ_CLS folder adds the two names back.
 */
public final class AdapterFolder {
  static final String CONFIG = "adapter_config.json";
  static final String WEIGHTS = "adapter_model.safetensors";
  /** PEFT's prefix of every key: PeftModel.base_model (the LoraModel) .model (the transformers model). */
  static final String PREFIX = "base_model.model.";
  /** PEFT's task types: a causal LM's adapter, and a sequence classifier's (a reward model). */
  public static final String CAUSAL_LM = "CAUSAL_LM";
  public static final String SEQ_CLS = "SEQ_CLS";
  /** The module names PeftModelForSequenceClassification appends to modules_to_save, in its order. */
  static final List<String> CLASSIFIER_MODULES = List.of("classifier", "score");

  private AdapterFolder() {}

  /** A folder's checked config and its tensors' header entries by name, nothing read beyond the headers. */
  record Opened(String configPath, String weightsPath, byte[] configBytes, PeftSettings peft, String taskType,
      Map<String, Safetensors.Entry> tensors) {
    /** sha256 over the config's bytes and the weights file's sha256 (streamed by the caller as it reads). */
    String fingerprint(byte[] weightsSha256) {
      MessageDigest sha = Safetensors.sha256();
      sha.update(configBytes);
      String text = "peft adapter " + HexFormat.of().formatHex(sha.digest()) + " "
          + HexFormat.of().formatHex(weightsSha256);
      return CausalLM.sha256Hex(text);
    }
  }

  static Opened open(Storage storage, String folder) {
    String configPath = Storage.join(folder, CONFIG);
    String weightsPath = Storage.join(folder, WEIGHTS);
    if (!storage.exists(configPath)) {
      throw new IllegalArgumentException(configPath + ": not found (a PEFT adapter folder holds " + CONFIG + " and "
          + WEIGHTS + ")");
    }
    if (!storage.exists(weightsPath)) {
      throw new IllegalArgumentException(weightsPath + ": not found (adapter_model.bin, PyTorch's pickle format, is "
          + "not read: save the adapter with safe_serialization=True)");
    }
    byte[] configBytes = storage.readBytes(configPath);
    PeftSettings peft = parseConfig(configPath, configBytes);
    String taskType = taskType(configPath, configBytes);
    Map<String, Safetensors.Entry> tensors = new LinkedHashMap<>();
    try (InputStream in = storage.open(weightsPath)) {
      for (Safetensors.Entry e : Safetensors.readHeader(in, weightsPath, storage.status(weightsPath).getLen())
          .entries()) {
        tensors.put(e.name(), e);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(weightsPath + ": cannot read: " + e.getMessage(), e);
    }
    return new Opened(configPath, weightsPath, configBytes, peft, taskType, tensors);
  }

  /** The adapter's LoRA settings, checked as {@link CausalLM#loadAdapter} checks them (errors name file and field). */
  public static PeftSettings settings(Storage storage, String folder) {
    return open(storage, folder).peft();
  }

  /** The fingerprint {@link CausalLM#loadAdapter} gives the adapter, from the files' bytes (no tensor is built). */
  public static String fingerprint(Storage storage, String folder) {
    Opened opened = open(storage, folder);
    MessageDigest sha = Safetensors.sha256();
    try (InputStream in = new java.security.DigestInputStream(storage.open(opened.weightsPath()), sha)) {
      in.transferTo(java.io.OutputStream.nullOutputStream());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + opened.weightsPath() + ": " + e.getMessage(), e);
    }
    return opened.fingerprint(sha.digest());
  }

  /** The fingerprint of a base model with an adapter applied (a reference stage's model, say). */
  public static String withBase(String baseFingerprint, String adapterFingerprint) {
    return CausalLM.sha256Hex("base + peft adapter\n" + baseFingerprint + "\n" + adapterFingerprint);
  }

  /** Writes both files (float32 tensors); other files in the folder are left alone. */
  static void write(Storage storage, String folder, PeftSettings peft, String baseModel, String taskType,
      List<Safetensors.Tensor> tensors) {
    storage.mkdirs(folder);
    storage.writeString(Storage.join(folder, CONFIG), configJson(peft, baseModel, taskType));
    String path = Storage.join(folder, WEIGHTS);
    try (OutputStream out = new java.io.BufferedOutputStream(storage.create(path), 1 << 20)) {
      Safetensors.write(out, tensors, Safetensors.Dtype.F32);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
    }
  }

  /**
   * adapter_config.json as PEFT's LoraConfig writes it (sorted keys; the fields this model does not use at their
   * defaults); {@code baseModel} is {@code base_model_name_or_path} (null when the base was random); a
   * {@link #SEQ_CLS} adapter lists PEFT's classifier modules after the configured {@code modules_to_save}.
   */
  static String configJson(PeftSettings peft, String baseModel, String taskType) {
    ObjectNode n = JsonNodeFactory.instance.objectNode();
    n.putObject("alpha_pattern");
    n.putNull("auto_mapping");
    if (baseModel == null) {
      n.putNull("base_model_name_or_path");
    } else {
      n.put("base_model_name_or_path", baseModel);
    }
    n.put("bias", "none");
    n.put("fan_in_fan_out", false);
    n.put("inference_mode", true);
    n.put("init_lora_weights", true);
    n.putNull("layers_pattern");
    n.putNull("layers_to_transform");
    n.put("lora_alpha", peft.alpha());
    n.put("lora_dropout", peft.dropout());
    List<String> whole = new ArrayList<>(peft.modulesToSave());
    if (taskType.equals(SEQ_CLS)) {
      whole.addAll(CLASSIFIER_MODULES);
    }
    if (whole.isEmpty()) {
      n.putNull("modules_to_save");
    } else {
      whole.forEach(n.putArray("modules_to_save")::add);
    }
    n.put("peft_type", "LORA");
    n.put("r", peft.r());
    n.putObject("rank_pattern");
    n.putNull("revision");
    peft.targetModules().forEach(n.putArray("target_modules")::add);
    n.put("task_type", taskType);
    n.put("use_dora", false);
    n.put("use_rslora", false);
    return n.toPrettyString() + "\n";
  }

  /** An adapter_config.json as settings, refusing what the forward pass here does not compute. */
  static PeftSettings parseConfig(String path, byte[] bytes) {
    JsonNode n;
    try {
      n = Json.MAPPER.readTree(bytes);
    } catch (IOException e) {
      throw new IllegalArgumentException(path + ": not valid JSON: " + e.getMessage(), e);
    }
    if (n == null || !n.isObject()) {
      throw new IllegalArgumentException(path + ": must be a JSON object");
    }
    String type = n.path("peft_type").asText("");
    if (!type.equals("LORA")) {
      throw new IllegalArgumentException(path + ": peft_type must be LORA (got " + n.get("peft_type") + ")");
    }
    boolean classifier = SEQ_CLS.equals(taskType(path, n));
    requireAbsentOr(path, n, "bias", "\"none\"", v -> v.isTextual() && v.asText().equals("none"));
    requireAbsentOr(path, n, "fan_in_fan_out", "false", v -> v.isBoolean() && !v.asBoolean());
    requireAbsentOr(path, n, "use_dora", "false", v -> v.isBoolean() && !v.asBoolean());
    requireAbsentOr(path, n, "use_rslora", "false (scaling alpha/sqrt(r) is not implemented)",
        v -> v.isBoolean() && !v.asBoolean());
    requireAbsentOr(path, n, "rank_pattern", "empty", v -> v.isObject() && v.isEmpty());
    requireAbsentOr(path, n, "alpha_pattern", "empty", v -> v.isObject() && v.isEmpty());
    requireAbsentOr(path, n, "layers_to_transform", "null", v -> false);
    JsonNode r = n.get("r");
    if (r == null || !r.canConvertToExactIntegral() || r.asInt() <= 0) {
      throw new IllegalArgumentException(path + ": r must be an integer > 0 (got " + r + ")");
    }
    JsonNode alpha = n.get("lora_alpha");
    if (alpha == null || !alpha.isNumber() || !(alpha.asDouble() > 0)) {
      throw new IllegalArgumentException(path + ": lora_alpha must be a number > 0 (got " + alpha + ")");
    }
    JsonNode dropout = n.get("lora_dropout");
    double p = dropout == null || dropout.isNull() ? 0.0 : dropout.asDouble(Double.NaN);
    if (!(p >= 0 && p < 1)) {
      throw new IllegalArgumentException(path + ": lora_dropout must be in [0, 1) (got " + dropout + ")");
    }
    JsonNode targets = n.get("target_modules");
    List<String> targetNames = new ArrayList<>();
    if (targets != null && targets.isTextual() && targets.asText().equals(PeftSettings.ALL_LINEAR)) {
      targetNames.add(PeftSettings.ALL_LINEAR);
    } else if (targets != null && targets.isArray() && !targets.isEmpty()) {
      for (JsonNode t : targets) {
        if (!PeftSettings.PROJECTIONS.contains(t.asText())) {
          throw new IllegalArgumentException(path + ": target_modules names " + t + ", which is not a linear layer "
              + "of this model (known: " + PeftSettings.PROJECTIONS + ")");
        }
        targetNames.add(t.asText());
      }
    } else {
      throw new IllegalArgumentException(path + ": target_modules must be a non-empty list of "
          + PeftSettings.PROJECTIONS + " or \"" + PeftSettings.ALL_LINEAR + "\" (a regex is not supported; got "
          + targets + ")");
    }
    List<String> save = new ArrayList<>();
    JsonNode modules = n.get("modules_to_save");
    if (modules != null && !modules.isNull()) {
      if (!modules.isArray()) {
        throw new IllegalArgumentException(path + ": modules_to_save must be null or a list (got " + modules + ")");
      }
      for (JsonNode m : modules) {
        if (classifier && CLASSIFIER_MODULES.contains(m.asText())) {
          continue; // implied by SEQ_CLS: the score head is always saved whole
        }
        if (!PeftSettings.SAVABLE.contains(m.asText())) {
          throw new IllegalArgumentException(path + ": modules_to_save names " + m + " (known: "
              + PeftSettings.SAVABLE + ")");
        }
        if (!save.contains(m.asText())) {
          save.add(m.asText());
        }
      }
    }
    return new PeftSettings("lora", r.asInt(), alpha.asDouble(), p, targetNames, save);
  }

  /** The adapter's task type: CAUSAL_LM (also when absent or null, as older PEFT versions wrote) or SEQ_CLS. */
  static String taskType(String path, byte[] bytes) {
    try {
      return taskType(path, Json.MAPPER.readTree(bytes));
    } catch (IOException e) {
      throw new IllegalArgumentException(path + ": not valid JSON: " + e.getMessage(), e);
    }
  }

  private static String taskType(String path, JsonNode n) {
    JsonNode task = n.path("task_type");
    if (task.isMissingNode() || task.isNull()) {
      return CAUSAL_LM;
    }
    if (!task.asText().equals(CAUSAL_LM) && !task.asText().equals(SEQ_CLS)) {
      throw new IllegalArgumentException(path + ": task_type must be CAUSAL_LM or SEQ_CLS (got " + task + ")");
    }
    return task.asText();
  }

  private static void requireAbsentOr(String path, JsonNode n, String field,
      String expected, java.util.function.Predicate<JsonNode> ok) {
    JsonNode v = n.get(field);
    if (v != null && !v.isNull() && !ok.test(v)) {
      throw new IllegalArgumentException(path + ": " + field + " must be " + expected + " (got " + v + ")");
    }
  }
}
