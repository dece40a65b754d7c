package io.sparkdpo.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.io.Json;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The fields of a Hugging Face {@code config.json} that the Llama family ({@code LlamaForCausalLM},
 * {@code Qwen2ForCausalLM}, {@code MistralForCausalLM}, and as reward models their one-label
 * {@code *ForSequenceClassification}) needs, in HF's own names when serialised.
 * Fields this project does not interpret are kept in {@code extra} and written back unchanged, so a loaded
 * folder saves with the same config. Anything that would change the maths and is not implemented (another
 * activation, a rope scaling type other than linear and llama3, attention dropout, Qwen2's sliding window,
 * quantization...) is rejected with the field named; keys that do not change the maths ({@code use_cache},
 * {@code transformers_version}, {@code max_window_layers} without a sliding window...) are kept and ignored.
 *
 * @param qkvBias q/k/v projections carry a bias (Qwen2 always; Llama when {@code attention_bias})
 * @param outputBias o_proj carries a bias (Llama's {@code attention_bias} only)
 * @param slidingWindow keys further back than this many positions are masked (Mistral); 0 means none
 * @param eosTokenIds HF allows one id or a list; all of them stop generation
 * @param padTokenId -1 when the config has none
 * @param bosTokenId -1 when the config has none
 * @param ropeScaling {@code rope_scaling} as interpreted ({@link RopeScaling#NONE} for none); the JSON itself stays
 *     in {@code extra} and is written back as given
 */
public record ModelConfig(
    String architecture,
    String modelType,
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int numKeyValueHeads,
    int headDim,
    int maxPositionEmbeddings,
    double rmsNormEps,
    double ropeTheta,
    boolean tieWordEmbeddings,
    boolean qkvBias,
    boolean outputBias,
    boolean mlpBias,
    int slidingWindow,
    double initializerRange,
    int bosTokenId,
    List<Integer> eosTokenIds,
    int padTokenId,
    String torchDtype,
    Map<String, JsonNode> extra,
    RopeScaling ropeScaling) {

  /** HF architecture name -> model_type. */
  private static final Map<String, String> ARCHITECTURES = Map.of(
      "LlamaForCausalLM", "llama",
      "Qwen2ForCausalLM", "qwen2",
      "MistralForCausalLM", "mistral",
      "LlamaForSequenceClassification", "llama",
      "Qwen2ForSequenceClassification", "qwen2",
      "MistralForSequenceClassification", "mistral");

  private static final String CAUSAL_LM = "ForCausalLM";
  private static final String SEQUENCE_CLASSIFICATION = "ForSequenceClassification";

  /** Keys this record interprets (everything else goes to {@code extra}). */
  private static final Set<String> KNOWN = Set.of(
      "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
      "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps",
      "rope_theta", "tie_word_embeddings", "attention_bias", "mlp_bias", "sliding_window",
      "initializer_range", "bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype", "hidden_act");

  /** transformers' max_position_embeddings when config.json has none. */
  private static final Map<String, Integer> MAX_POSITIONS = Map.of("llama", 2048, "qwen2", 32768, "mistral", 131072);

  public ModelConfig {
    eosTokenIds = List.copyOf(eosTokenIds);
    ropeScaling = ropeScaling == null ? RopeScaling.NONE : ropeScaling;
    extra = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(extra));
    List<String> problems = new ArrayList<>();
    if (!ARCHITECTURES.containsKey(architecture)) {
      problems.add("architectures: must be one of " + ARCHITECTURES.keySet() + " (got " + architecture + ")");
    } else if (!ARCHITECTURES.get(architecture).equals(modelType)) {
      problems.add("model_type: " + architecture + " needs " + ARCHITECTURES.get(architecture)
          + " (got " + modelType + ")");
    }
    positive(problems, "vocab_size", vocabSize);
    positive(problems, "hidden_size", hiddenSize);
    positive(problems, "intermediate_size", intermediateSize);
    positive(problems, "num_hidden_layers", numHiddenLayers);
    positive(problems, "num_attention_heads", numAttentionHeads);
    positive(problems, "num_key_value_heads", numKeyValueHeads);
    positive(problems, "max_position_embeddings", maxPositionEmbeddings);
    if (headDim <= 0 || headDim % 2 != 0) {
      problems.add("head_dim: must be a positive even number (got " + headDim + ")");
    }
    if (numKeyValueHeads > 0 && numAttentionHeads % numKeyValueHeads != 0) {
      problems.add("num_key_value_heads: must divide num_attention_heads=" + numAttentionHeads
          + " (got " + numKeyValueHeads + ")");
    }
    if (!(rmsNormEps > 0)) {
      problems.add("rms_norm_eps: must be > 0 (got " + rmsNormEps + ")");
    }
    if (!(ropeTheta > 0)) {
      problems.add("rope_theta: must be > 0 (got " + ropeTheta + ")");
    }
    if (slidingWindow < 0) {
      problems.add("sliding_window: must be >= 0 (got " + slidingWindow + ")");
    }
    for (int id : eosTokenIds) {
      if (id < 0 || id >= vocabSize) {
        problems.add("eos_token_id: " + id + " is outside the vocabulary of " + vocabSize);
      }
    }
    if (padTokenId >= vocabSize) {
      problems.add("pad_token_id: " + padTokenId + " is outside the vocabulary of " + vocabSize);
    }
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException("unsupported model config: " + String.join("; ", problems));
    }
  }

  /**
   * A reward model: transformers' {@code *ForSequenceClassification} with one label, the decoder stack and a
   * {@code score} head [1, hidden_size] (no bias, no LM head) on the last token that is not {@code pad_token_id}.
   */
  public boolean scoresSequences() {
    return architecture.endsWith(SEQUENCE_CLASSIFICATION);
  }

  /**
   * This causal LM's config as a one-label sequence classifier, as {@code AutoModelForSequenceClassification
   * .from_pretrained(path, num_labels=1)} saves it: the architecture renamed, {@code id2label}/{@code label2id} of
   * one label (transformers derives {@code num_labels} from them) and {@code num_labels: 1} stated as well. A config
   * without {@code pad_token_id} takes its first {@code eos_token_id}, as TRL sets the pad token to EOS: the scored
   * token is the last one that is not padding, so a classifier needs one.
   */
  public ModelConfig asSequenceClassifier() {
    if (scoresSequences()) {
      return this;
    }
    int pad = padTokenId;
    if (pad < 0) {
      if (eosTokenIds.isEmpty()) {
        throw new IllegalArgumentException("pad_token_id: a reward model scores the last token that is not padding, "
            + "but the config has neither pad_token_id nor eos_token_id to pad with");
      }
      pad = eosTokenIds.get(0);
    }
    Map<String, JsonNode> labels = new LinkedHashMap<>(extra);
    JsonNodeFactory f = JsonNodeFactory.instance;
    labels.put("id2label", f.objectNode().put("0", "LABEL_0"));
    labels.put("label2id", f.objectNode().put("LABEL_0", 0));
    labels.put("num_labels", f.numberNode(1));
    String arch = architecture.substring(0, architecture.length() - CAUSAL_LM.length()) + SEQUENCE_CLASSIFICATION;
    return new ModelConfig(arch, modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers,
        numAttentionHeads, numKeyValueHeads, headDim, maxPositionEmbeddings, rmsNormEps, ropeTheta,
        tieWordEmbeddings, qkvBias, outputBias, mlpBias, slidingWindow, initializerRange, bosTokenId,
        eosTokenIds, pad, torchDtype, labels, ropeScaling);
  }

  /**
   * A classifier's label count as transformers reads it: the size of {@code id2label} when present, else
   * {@code num_labels}, else transformers' default of 2. This project builds one-label (reward) heads only.
   */
  private static void requireOneLabel(ObjectNode n) {
    JsonNode id2label = n.get("id2label");
    int labels = id2label != null && id2label.isObject() ? id2label.size()
        : n.hasNonNull("num_labels") ? n.get("num_labels").asInt() : 2;
    if (labels != 1) {
      throw new IllegalArgumentException("num_labels: a reward model has one label (got " + labels + ", from "
          + (id2label != null ? "id2label" : n.has("num_labels") ? "num_labels" : "transformers' default") + ")");
    }
    if (n.hasNonNull("num_labels") && n.get("num_labels").asInt() != labels) {
      throw new IllegalArgumentException("num_labels: " + n.get("num_labels") + " contradicts id2label " + id2label);
    }
    if (!n.hasNonNull("pad_token_id")) {
      throw new IllegalArgumentException("pad_token_id: missing; a sequence classifier scores the last token that "
          + "is not padding, which needs a pad token (transformers refuses batches without one)");
    }
  }

  private static void positive(List<String> problems, String key, int value) {
    if (value <= 0) {
      problems.add(key + ": must be > 0 (got " + value + ")");
    }
  }

  /**
   * The built-in default: vocabulary 4096 (the project's BPE tokenizer), about 4 million parameters,
   * grouped-query attention and tied embeddings, so every code path of the family is exercised.
   */
  public static ModelConfig tiny() {
    return new ModelConfig("LlamaForCausalLM", "llama", 4096, 256, 704, 4, 4, 2, 64, 512, 1e-5, 10000.0,
        true, false, false, false, 0, 0.02, 0, List.of(0), 1, "float32", Map.of(), RopeScaling.NONE);
  }

  /** A plain Llama config, convenient for tests and benchmarks. */
  public static ModelConfig llama(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads,
      boolean tied) {
    return new ModelConfig("LlamaForCausalLM", "llama", vocab, hidden, intermediate, layers, heads, kvHeads,
        hidden / heads, 2048, 1e-5, 10000.0, tied, false, false, false, 0, 0.02, 0, List.of(0), 1, "float32",
        Map.of(), RopeScaling.NONE);
  }

  public int numQueryGroups() {
    return numAttentionHeads / numKeyValueHeads;
  }

  /** Parameter count, with tied embeddings counted once. */
  public long numParameters() {
    long d = hiddenSize;
    long q = (long) numAttentionHeads * headDim;
    long kv = (long) numKeyValueHeads * headDim;
    long attention = d * q + 2 * d * kv + q * d + (qkvBias ? q + 2 * kv : 0) + (outputBias ? d : 0);
    long mlp = 3 * d * intermediateSize + (mlpBias ? 2L * intermediateSize + d : 0);
    long layer = attention + mlp + 2 * d;
    // A classifier has the embedding once and the [1, d] score head instead of an LM head.
    long embeddings = (long) vocabSize * d * (tieWordEmbeddings || scoresSequences() ? 1 : 2);
    return embeddings + numHiddenLayers * layer + d + (scoresSequences() ? d : 0);
  }

  /** Whether a checkpoint of {@code other} has exactly this config's tensors (names and shapes). */
  public boolean sameTensors(ModelConfig other) {
    return architecture.equals(other.architecture) && vocabSize == other.vocabSize && hiddenSize == other.hiddenSize
        && intermediateSize == other.intermediateSize && numHiddenLayers == other.numHiddenLayers
        && numAttentionHeads == other.numAttentionHeads && numKeyValueHeads == other.numKeyValueHeads
        && headDim == other.headDim && tieWordEmbeddings == other.tieWordEmbeddings && qkvBias == other.qkvBias
        && outputBias == other.outputBias && mlpBias == other.mlpBias;
  }

  public ModelConfig withTorchDtype(String dtype) {
    Map<String, JsonNode> extra = this.extra;
    if (extra.containsKey("dtype")) { // newer transformers' name for torch_dtype: keep both in step
      extra = new LinkedHashMap<>(extra);
      extra.put("dtype", JsonNodeFactory.instance.textNode(dtype));
    }
    return new ModelConfig(architecture, modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers,
        numAttentionHeads, numKeyValueHeads, headDim, maxPositionEmbeddings, rmsNormEps, ropeTheta,
        tieWordEmbeddings, qkvBias, outputBias, mlpBias, slidingWindow, initializerRange, bosTokenId,
        eosTokenIds, padTokenId, dtype, extra, ropeScaling);
  }

  /** Parses config.json text; {@code source} names the file in error messages. */
  public static ModelConfig fromJson(String json, String source) {
    JsonNode root;
    try {
      root = Json.MAPPER.readTree(json);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(source + ": not valid JSON: " + e.getOriginalMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(source + ": must hold a JSON object");
    }
    try {
      return fromTree((ObjectNode) root);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
    }
  }

  private static ModelConfig fromTree(ObjectNode n) {
    JsonNode archs = n.get("architectures");
    if (archs == null || !archs.isArray() || archs.size() != 1) {
      throw new IllegalArgumentException("architectures: must list exactly one architecture (got " + archs + ")");
    }
    String arch = archs.get(0).asText();
    if (!ARCHITECTURES.containsKey(arch)) {
      throw new IllegalArgumentException("architectures: " + arch + " is not supported; supported are "
          + ARCHITECTURES.keySet());
    }
    String type = text(n, "model_type", ARCHITECTURES.get(arch));
    refuseWhatChangesTheMaths(n, type);
    if (arch.endsWith(SEQUENCE_CLASSIFICATION)) {
      requireOneLabel(n);
    }
    double theta = n.path("rope_theta").asDouble(10000.0);
    RopeScaling scaling = RopeScaling.fromJson(n.get("rope_scaling"), "rope_scaling");
    JsonNode parameters = n.get("rope_parameters"); // transformers 5's name for rope_theta plus rope_scaling
    if (parameters != null && !parameters.isNull()) {
      RopeScaling fromParameters = RopeScaling.fromJson(parameters, "rope_parameters");
      if (n.hasNonNull("rope_scaling") && !fromParameters.equals(scaling)) {
        throw new IllegalArgumentException("rope_parameters: " + parameters + " contradicts rope_scaling "
            + n.get("rope_scaling"));
      }
      scaling = fromParameters;
      if (parameters.hasNonNull("rope_theta")) {
        double t = parameters.get("rope_theta").asDouble();
        if (n.hasNonNull("rope_theta") && t != theta) {
          throw new IllegalArgumentException("rope_parameters.rope_theta: " + t + " contradicts rope_theta " + theta);
        }
        theta = t;
      }
    }
    int hidden = integer(n, "hidden_size", -1);
    int heads = integer(n, "num_attention_heads", -1);
    int headDim = n.hasNonNull("head_dim") ? integer(n, "head_dim", -1) : (heads > 0 ? hidden / heads : -1);
    if (!n.hasNonNull("head_dim") && heads > 0 && hidden % heads != 0) {
      throw new IllegalArgumentException("hidden_size: " + hidden + " is not divisible by num_attention_heads="
          + heads + " and no head_dim is given");
    }
    // transformers' defaults when the key is absent: Llama none (= heads), Qwen2 32, Mistral 8; null means heads.
    int kvHeads = !n.has("num_key_value_heads") && !type.equals("llama")
        ? (type.equals("qwen2") ? 32 : 8) : integer(n, "num_key_value_heads", heads);
    boolean attentionBias = n.path("attention_bias").asBoolean(false);
    boolean qkvBias = type.equals("qwen2") || attentionBias;
    boolean outputBias = !type.equals("qwen2") && attentionBias;
    int window = 0;
    if (type.equals("mistral") && n.hasNonNull("sliding_window")) {
      window = integer(n, "sliding_window", 0);
    }
    Map<String, JsonNode> extra = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      boolean interpreted = KNOWN.contains(e.getKey())
          && !(e.getKey().equals("sliding_window") && !type.equals("mistral"));
      // head_dim is read, and also kept as given: Llama 3.x configs state it even where it equals
      // hidden_size / num_attention_heads, and a saved config should say what the loaded one said.
      if (!interpreted || e.getKey().equals("head_dim")) {
        extra.put(e.getKey(), e.getValue()); // kept verbatim so the saved config.json says the same thing
      }
    }
    return new ModelConfig(arch, type,
        integer(n, "vocab_size", -1), hidden, integer(n, "intermediate_size", -1),
        integer(n, "num_hidden_layers", -1), heads, kvHeads, headDim,
        integer(n, "max_position_embeddings", MAX_POSITIONS.getOrDefault(type, 2048)),
        n.path("rms_norm_eps").asDouble(1e-6), theta,
        n.path("tie_word_embeddings").asBoolean(false), qkvBias, outputBias,
        type.equals("llama") && n.path("mlp_bias").asBoolean(false),
        window, n.path("initializer_range").asDouble(0.02),
        integer(n, "bos_token_id", -1), eosIds(n.get("eos_token_id")), integer(n, "pad_token_id", -1),
        text(n, "torch_dtype", text(n, "dtype", "float32")), extra, scaling);
  }

  /**
   * Refuses, naming the key, what would change the maths and is not implemented: quantized weights, another
   * activation, attention dropout, partial rotary embeddings, Qwen2's sliding window. (Rope scaling types are
   * refused by {@link RopeScaling#fromJson}.)
   */
  private static void refuseWhatChangesTheMaths(ObjectNode n, String type) {
    String act = text(n, "hidden_act", "silu");
    if (!act.equals("silu")) {
      throw new IllegalArgumentException("hidden_act: only silu is supported (got " + act + ")");
    }
    if (n.hasNonNull("quantization_config")) {
      throw new IllegalArgumentException("quantization_config: quantized checkpoints are not supported (got "
          + n.get("quantization_config").path("quant_method").asText("a quantization_config")
          + "); use the unquantized weights");
    }
    double dropout = n.path("attention_dropout").asDouble(0.0);
    if (dropout != 0.0) {
      throw new IllegalArgumentException("attention_dropout: only 0.0 is supported (got " + dropout + ")");
    }
    // pretraining_tp > 1 made older transformers split each projection into slices and add the parts up: the same
    // maths in another summation order (current transformers no longer reads it), so any slice count loads.
    JsonNode tp = n.get("pretraining_tp");
    if (tp != null && !tp.isNull() && !(tp.isIntegralNumber() && tp.asInt() >= 1)) {
      throw new IllegalArgumentException("pretraining_tp: must be a positive integer (got " + tp + ")");
    }
    if (n.hasNonNull("partial_rotary_factor") && n.get("partial_rotary_factor").asDouble() != 1.0) {
      throw new IllegalArgumentException("partial_rotary_factor: only 1.0 (rotate every head dimension) is supported "
          + "(got " + n.get("partial_rotary_factor") + ")");
    }
    if (type.equals("qwen2")) {
      // Real Qwen2.5 configs carry sliding_window and max_window_layers with use_sliding_window false: ignored then.
      if (n.path("use_sliding_window").asBoolean(false)) {
        throw new IllegalArgumentException("use_sliding_window: Qwen2's per-layer sliding window is not supported "
            + "(got true)");
      }
      JsonNode layerTypes = n.get("layer_types");
      if (layerTypes != null && layerTypes.isArray()) {
        for (JsonNode t : layerTypes) {
          if (!t.asText().equals("full_attention")) {
            throw new IllegalArgumentException("layer_types: only full_attention layers are supported (got " + t + ")");
          }
        }
      }
    }
  }

  private static List<Integer> eosIds(JsonNode node) {
    List<Integer> ids = new ArrayList<>();
    if (node == null || node.isNull()) {
      return ids;
    }
    if (node.isArray()) {
      node.forEach(x -> ids.add(x.asInt()));
    } else if (node.isIntegralNumber()) {
      ids.add(node.asInt());
    } else {
      throw new IllegalArgumentException("eos_token_id: must be an integer or a list of integers (got " + node + ")");
    }
    return ids;
  }

  private static int integer(JsonNode n, String key, int fallback) {
    JsonNode v = n.get(key);
    if (v == null || v.isNull()) {
      if (fallback == -1 && !key.endsWith("token_id")) {
        throw new IllegalArgumentException(key + ": missing");
      }
      return fallback;
    }
    if (!v.isIntegralNumber()) {
      throw new IllegalArgumentException(key + ": must be an integer (got " + v + ")");
    }
    return v.asInt();
  }

  private static String text(JsonNode n, String key, String fallback) {
    JsonNode v = n.get(key);
    return v == null || v.isNull() ? fallback : v.asText();
  }

  /** config.json as Hugging Face writes it: every field transformers reads for this architecture. */
  public String toJson() {
    ObjectNode n = JsonNodeFactory.instance.objectNode();
    extra.forEach(n::set);
    n.putArray("architectures").add(architecture);
    n.put("model_type", modelType);
    n.put("vocab_size", vocabSize);
    n.put("hidden_size", hiddenSize);
    n.put("intermediate_size", intermediateSize);
    n.put("num_hidden_layers", numHiddenLayers);
    n.put("num_attention_heads", numAttentionHeads);
    n.put("num_key_value_heads", numKeyValueHeads);
    if (headDim * numAttentionHeads != hiddenSize) {
      n.put("head_dim", headDim);
    }
    n.put("max_position_embeddings", maxPositionEmbeddings);
    n.put("rms_norm_eps", rmsNormEps);
    n.put("rope_theta", ropeTheta);
    n.put("tie_word_embeddings", tieWordEmbeddings);
    n.put("hidden_act", "silu");
    n.put("initializer_range", initializerRange);
    if (!modelType.equals("qwen2")) {
      n.put("attention_bias", qkvBias);
    }
    if (modelType.equals("llama")) {
      n.put("mlp_bias", mlpBias);
    }
    if (modelType.equals("mistral")) {
      if (slidingWindow > 0) {
        n.put("sliding_window", slidingWindow);
      } else {
        n.putNull("sliding_window");
      }
    }
    putId(n, "bos_token_id", bosTokenId);
    if (eosTokenIds.size() == 1) {
      n.put("eos_token_id", eosTokenIds.get(0));
    } else if (!eosTokenIds.isEmpty()) {
      ArrayNode a = n.putArray("eos_token_id");
      eosTokenIds.forEach(a::add);
    }
    putId(n, "pad_token_id", padTokenId);
    n.put("torch_dtype", torchDtype);
    if (extra.containsKey("dtype")) {
      n.put("dtype", torchDtype); // newer transformers write "dtype"; keep both in step
    }
    try {
      return Json.MAPPER.writeValueAsString(n) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void putId(ObjectNode n, String key, int id) {
    if (id >= 0) {
      n.put(key, id);
    }
  }
}
