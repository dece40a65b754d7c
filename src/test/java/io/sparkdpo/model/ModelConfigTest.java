package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.io.Json;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ModelConfigTest {
  private static final String LLAMA = """
      {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 4096,
       "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
       "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false,
       "attention_bias": false, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": null,
       "torch_dtype": "float16", "rope_scaling": null, "pretraining_tp": 1, "use_cache": true,
       "transformers_version": "4.31.0.dev0"}
      """;

  @Test
  void parsesLlama2SevenBAndCountsItsParameters() {
    ModelConfig c = ModelConfig.fromJson(LLAMA, "config.json");
    assertEquals("llama", c.modelType());
    assertEquals(128, c.headDim());
    assertEquals(List.of(2), c.eosTokenIds());
    assertEquals(-1, c.padTokenId());
    assertFalse(c.qkvBias());
    // Llama-2-7B has 6,738,415,616 parameters.
    assertEquals(6_738_415_616L, c.numParameters());
  }

  @Test
  void qwen2AlwaysHasQkvBiasButNoOutputBias() {
    ModelConfig c = ModelConfig.fromJson("""
        {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
         "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
         "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
         "tie_word_embeddings": true, "hidden_act": "silu", "bos_token_id": 151643, "eos_token_id": 151643,
         "use_sliding_window": false, "sliding_window": 32768, "max_window_layers": 21, "torch_dtype": "bfloat16"}
        """, "qwen/config.json");
    assertTrue(c.qkvBias());
    assertFalse(c.outputBias());
    assertEquals(0, c.slidingWindow());
    // Qwen2-0.5B has 494,032,768 parameters.
    assertEquals(494_032_768L, c.numParameters());
  }

  @Test
  void mistralKeepsItsSlidingWindowAndLlama3KeepsAListOfEosIds() {
    ModelConfig mistral = ModelConfig.fromJson("""
        {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096,
         "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
         "max_position_embeddings": 32768, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
         "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
        """, "m");
    assertEquals(4096, mistral.slidingWindow());
    assertEquals(7_241_732_096L, mistral.numParameters()); // Mistral-7B-v0.1
    ModelConfig llama3 = ModelConfig.fromJson(LLAMA.replace("\"eos_token_id\": 2", "\"eos_token_id\": [2, 7]"), "x");
    assertEquals(List.of(2, 7), llama3.eosTokenIds());
  }

  @Test
  void rejectsUnsupportedArchitecturesAndFieldsNamingTheField() {
    IllegalArgumentException arch = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson(
        LLAMA.replace("LlamaForCausalLM", "GPT2LMHeadModel"), "models/gpt2/config.json"));
    assertTrue(arch.getMessage().contains("models/gpt2/config.json"), arch.getMessage());
    assertTrue(arch.getMessage().contains("GPT2LMHeadModel is not supported"), arch.getMessage());
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson(
        LLAMA.replace("\"silu\"", "\"gelu\""), "c")).getMessage().contains("hidden_act"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson(
        LLAMA.replace("\"num_key_value_heads\": 32", "\"num_key_value_heads\": 5"), "c"))
        .getMessage().contains("num_key_value_heads"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson(
        LLAMA.replace("\"vocab_size\": 32000,", ""), "c")).getMessage().contains("vocab_size: missing"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson("{not json", "c"))
        .getMessage().contains("not valid JSON"));
  }

  @Test
  void toJsonRoundTripsAndKeepsFieldsItDoesNotInterpret() throws Exception {
    ModelConfig c = ModelConfig.fromJson(LLAMA, "c");
    ModelConfig again = ModelConfig.fromJson(c.toJson(), "c2");
    assertEquals(c, again);
    JsonNode written = Json.MAPPER.readTree(c.withTorchDtype("bfloat16").toJson());
    assertEquals("4.31.0.dev0", written.get("transformers_version").asText());
    assertEquals(1, written.get("pretraining_tp").asInt());
    assertEquals("bfloat16", written.get("torch_dtype").asText());
    assertEquals("LlamaForCausalLM", written.get("architectures").get(0).asText());
    assertFalse(written.has("head_dim"));
  }

  @Test
  void tinyIsAFewMillionParametersWithTheBuiltInTokenizersIds() {
    ModelConfig tiny = ModelConfig.tiny();
    assertEquals(4096, tiny.vocabSize());
    assertEquals(List.of(0), tiny.eosTokenIds());
    assertEquals(0, tiny.bosTokenId());
    assertEquals(1, tiny.padTokenId());
    assertTrue(tiny.numParameters() > 2_000_000 && tiny.numParameters() < 8_000_000, "" + tiny.numParameters());
    assertTrue(tiny.numKeyValueHeads() < tiny.numAttentionHeads(), "tiny exercises grouped-query attention");
  }

  // ---------------------------------------------------------------------------------------------------------
  // Published config.json files (src/test/resources/io/sparkdpo/model/configs), as their model cards ship them

  static String published(String name) {
    try (InputStream in = ModelConfigTest.class.getResourceAsStream("configs/" + name + ".json")) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({
      "llama-3.2-1b,    1235814400, 64,  llama3, 131072",
      "llama-3.1-8b,    8030261248, 128, llama3, 131072",
      "qwen2.5-0.5b,    494032768,  64,  none,   32768",
      "qwen2.5-7b,      7615616512, 128, none,   131072",
      "mistral-7b-v0.1, 7241732096, 128, none,   32768",
      "mistral-7b-v0.3, 7248023552, 128, none,   32768",
      "smollm2-1.7b,    1711376384, 64,  none,   8192",
      "tinyllama-1.1b,  1100048384, 64,  none,   2048"})
  void publishedConfigsParseWithTheirPublishedParameterCountsAndRoundTrip(String name, long parameters, int headDim,
      String scaling, int maxPositions) throws Exception {
    String text = published(name);
    ModelConfig c = ModelConfig.fromJson(text, name + "/config.json");
    assertEquals(parameters, c.numParameters());
    assertEquals(headDim, c.headDim());
    assertEquals(maxPositions, c.maxPositionEmbeddings());
    assertEquals(scaling.equals("llama3") ? RopeScaling.Type.LLAMA3 : RopeScaling.Type.DEFAULT, c.ropeScaling().type());
    assertEquals("bfloat16", c.torchDtype());
    assertEquals(name.equals("mistral-7b-v0.1") ? 4096 : 0, c.slidingWindow());

    ModelConfig again = ModelConfig.fromJson(c.toJson(), "written/config.json");
    assertEquals(c, again);
    // Every key of the published file comes back with the same value (head_dim included where the file states it,
    // though it equals hidden_size / num_attention_heads in Llama 3.x).
    JsonNode original = Json.MAPPER.readTree(text);
    JsonNode written = Json.MAPPER.readTree(c.toJson());
    for (Iterator<String> it = original.fieldNames(); it.hasNext(); ) {
      String key = it.next();
      JsonNode a = original.get(key);
      JsonNode b = written.get(key);
      assertTrue(b != null, name + ": " + key + " missing from toJson");
      assertTrue(a.isNumber() && b.isNumber() ? a.asDouble() == b.asDouble() : a.equals(b),
          name + ": " + key + " was " + a + ", written " + b);
    }
  }

  @Test
  void llama3ScalingIsReadWithItsFourParametersAndWrittenBackAsGiven() throws Exception {
    ModelConfig c = ModelConfig.fromJson(published("llama-3.1-8b"), "c");
    assertEquals(RopeScaling.llama3(8.0, 1.0, 4.0, 8192), c.ropeScaling());
    assertEquals(500000.0, c.ropeTheta());
    JsonNode written = Json.MAPPER.readTree(c.toJson()).get("rope_scaling");
    assertEquals(Json.MAPPER.readTree(published("llama-3.1-8b")).get("rope_scaling"), written);
    // The legacy key "type" means the same as "rope_type".
    ModelConfig legacy = ModelConfig.fromJson(LLAMA.replace("\"rope_scaling\": null",
        "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}"), "c");
    assertEquals(RopeScaling.linear(2.0), legacy.ropeScaling());
    assertEquals("{\"type\":\"linear\",\"factor\":2.0}",
        Json.MAPPER.readTree(legacy.toJson()).get("rope_scaling").toString());
    assertEquals(RopeScaling.NONE, ModelConfig.fromJson(LLAMA.replace("\"rope_scaling\": null",
        "\"rope_scaling\": {\"rope_type\": \"default\"}"), "c").ropeScaling());
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "{\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 32768} | rope_scaling.rope_type",
      "{\"type\": \"dynamic\", \"factor\": 2.0}                                          | rope_scaling.type",
      "{\"rope_type\": \"longrope\", \"long_factor\": [1.0], \"short_factor\": [1.0]}       | rope_scaling.rope_type",
      "{\"type\": \"su\", \"long_factor\": [1.0], \"short_factor\": [1.0]}                 | rope_scaling.type",
      "{\"factor\": 2.0}                                                                | rope_scaling.rope_type",
      "{\"rope_type\": \"linear\"}                                                       | rope_scaling.factor",
      "{\"rope_type\": \"linear\", \"factor\": 0}                                          | rope_scaling.factor",
      "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192} | rope_scaling.low_freq_factor",
      "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192} | rope_scaling.high_freq_factor",
      "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0}                | rope_scaling.original_max_position_embeddings",
      "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0, \"high_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192} | rope_scaling.high_freq_factor",
      "{\"rope_type\": \"linear\", \"type\": \"llama3\", \"factor\": 2.0}                     | rope_scaling.type",
      "\"linear\"                                                                       | rope_scaling"})
  void unsupportedOrIncompleteRopeScalingIsRefusedNamingTheKey(String scaling, String key) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.fromJson(
        LLAMA.replace("\"rope_scaling\": null", "\"rope_scaling\": " + scaling), "models/x/config.json"));
    assertTrue(e.getMessage().startsWith("models/x/config.json: " + key + ":"), e.getMessage());
  }

  @Test
  void keysThatChangeTheMathsAreRefusedNamingTheKey() throws Exception {
    String qwen = published("qwen2.5-0.5b");
    assertRefused(qwen.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true"), "use_sliding_window");
    assertRefused(with(qwen, "layer_types", "[\"full_attention\", \"sliding_attention\"]"), "layer_types");
    String llama = published("llama-3.2-1b");
    assertRefused(with(llama, "quantization_config", "{\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true}"),
        "quantization_config");
    assertRefused(with(llama, "partial_rotary_factor", "0.5"), "partial_rotary_factor");
    assertRefused(with(llama, "attention_dropout", "0.1"), "attention_dropout");
    assertRefused(with(llama, "pretraining_tp", "0"), "pretraining_tp");
    assertRefused(with(llama, "rope_parameters", "{\"rope_type\": \"yarn\", \"factor\": 4.0}"), "rope_parameters");
    assertRefused(with(llama, "rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 500000.0}"),
        "rope_parameters"); // contradicts the llama3 rope_scaling
  }

  @Test
  void keysThatDoNotChangeTheMathsAreIgnoredAndKept() throws Exception {
    String llama = published("llama-3.2-1b");
    ModelConfig base = ModelConfig.fromJson(llama, "c");
    // pretraining_tp > 1 only split matmuls into slices in older transformers: same maths.
    ModelConfig tp = ModelConfig.fromJson(with(llama, "pretraining_tp", "2"), "c");
    assertTrue(tp.sameTensors(base));
    assertEquals(base.ropeScaling(), tp.ropeScaling());
    ModelConfig other = ModelConfig.fromJson(with(with(with(llama, "attn_implementation", "\"sdpa\""),
        "use_cache", "false"), "partial_rotary_factor", "1.0"), "c");
    JsonNode written = Json.MAPPER.readTree(other.toJson());
    assertEquals("sdpa", written.get("attn_implementation").asText());
    assertEquals("4.45.0.dev0", written.get("transformers_version").asText());
    // Qwen2 with a sliding window configured but switched off: no window, keys kept.
    ModelConfig qwen = ModelConfig.fromJson(published("qwen2.5-0.5b"), "c");
    assertEquals(0, qwen.slidingWindow());
    JsonNode q = Json.MAPPER.readTree(qwen.toJson());
    assertEquals(32768, q.get("sliding_window").asInt());
    assertEquals(24, q.get("max_window_layers").asInt());
    assertFalse(q.get("use_sliding_window").asBoolean());
    ModelConfig full = ModelConfig.fromJson(with(published("qwen2.5-0.5b"), "layer_types",
        "[\"full_attention\", \"full_attention\"]"), "c");
    assertEquals(0, full.slidingWindow());
    // Qwen2 and Mistral do not read mlp_bias.
    assertFalse(ModelConfig.fromJson(with(published("qwen2.5-0.5b"), "mlp_bias", "true"), "c").mlpBias());
  }

  @Test
  void newerTransformersKeysDtypeAndRopeParametersAreRead() throws Exception {
    // transformers 5 writes "dtype" instead of "torch_dtype", and rope_theta plus the scaling as "rope_parameters".
    ObjectNode n = (ObjectNode) Json.MAPPER.readTree(published("llama-3.2-1b"));
    n.remove("torch_dtype");
    n.put("dtype", "bfloat16");
    ObjectNode parameters = ((ObjectNode) n.remove("rope_scaling")).deepCopy();
    parameters.put("rope_theta", (double) n.remove("rope_theta").asDouble());
    n.set("rope_parameters", parameters);
    ModelConfig c = ModelConfig.fromJson(n.toString(), "c");
    assertEquals("bfloat16", c.torchDtype());
    assertEquals(500000.0, c.ropeTheta());
    assertEquals(RopeScaling.llama3(32.0, 1.0, 4.0, 8192), c.ropeScaling());
    JsonNode written = Json.MAPPER.readTree(c.withTorchDtype("float32").toJson());
    assertEquals("float32", written.get("dtype").asText());
    assertEquals(parameters, written.get("rope_parameters"));
    assertEquals(c.withTorchDtype("float32"), ModelConfig.fromJson(written.toString(), "c2"));
  }

  @Test
  void absentKeysTakeTheArchitecturesTransformersDefaults() {
    String mistral = """
        {"architectures": ["MistralForCausalLM"], "vocab_size": 32000, "hidden_size": 4096,
         "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32}
        """;
    ModelConfig m = ModelConfig.fromJson(mistral, "c");
    assertEquals(8, m.numKeyValueHeads());
    assertEquals(131072, m.maxPositionEmbeddings());
    assertEquals(1e-6, m.rmsNormEps());
    ModelConfig q = ModelConfig.fromJson(mistral.replace("Mistral", "Qwen2"), "c");
    assertEquals(32, q.numKeyValueHeads());
    assertEquals(32768, q.maxPositionEmbeddings());
    ModelConfig l = ModelConfig.fromJson(mistral.replace("Mistral", "Llama"), "c");
    assertEquals(32, l.numKeyValueHeads());
    assertEquals(2048, l.maxPositionEmbeddings());
  }

  private static String with(String json, String key, String valueJson) throws Exception {
    ObjectNode n = (ObjectNode) Json.MAPPER.readTree(json);
    n.set(key, Json.MAPPER.readTree(valueJson));
    return n.toString();
  }

  private static void assertRefused(String json, String key) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ModelConfig.fromJson(json, "m/config.json"));
    assertTrue(e.getMessage().startsWith("m/config.json: " + key), e.getMessage());
  }
}
