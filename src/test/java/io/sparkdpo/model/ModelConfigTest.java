package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import java.util.List;
import org.junit.jupiter.api.Test;

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
        LLAMA.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}"), "c"))
        .getMessage().contains("rope_scaling"));
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
}
