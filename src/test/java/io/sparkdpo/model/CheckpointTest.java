package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
  static final ModelConfig SMALL = ModelConfig.llama(64, 32, 48, 2, 4, 2, false);
  static final int[][] IDS = {{1, 5, 9, 33, 2, 60}, {7, 7, 3, 0, 41, 12}};

  @TempDir
  Path dir;

  static float[] logits(CausalLM model) {
    try (NDManager m = NDManager.newBaseManager()) {
      return model.logits(m.create(IDS), false).toFloatArray();
    }
  }

  static float maxDiff(float[] a, float[] b) {
    float worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    return worst;
  }

  @Test
  void parametersUseHuggingFaceNamesInStateDictOrder() {
    try (CausalLM model = CausalLM.create(SMALL, Device.cpu(), 1)) {
      List<String> names = new ArrayList<>(model.parameters().keySet());
      assertEquals(List.of("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
          "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight",
          "model.layers.0.self_attn.o_proj.weight", "model.layers.0.mlp.gate_proj.weight",
          "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
          "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight"),
          names.subList(0, 10));
      assertEquals(List.of("model.norm.weight", "lm_head.weight"), names.subList(names.size() - 2, names.size()));
      assertEquals(SMALL.numParameters(), model.numParameters());
      assertEquals(new Shape(16, 32), model.parameters().get("model.layers.1.self_attn.k_proj.weight").getShape());
      for (Parameter p : model.parameters().values()) {
        assertTrue(p.getArray().hasGradient(), p.getName() + " requires grad");
      }
    }
  }

  @Test
  void sameConfigAndSeedGiveTheSameWeightsAndFingerprint() {
    try (CausalLM a = CausalLM.create(SMALL, Device.cpu(), 5); CausalLM b = CausalLM.create(SMALL, Device.cpu(), 5);
        CausalLM c = CausalLM.create(SMALL, Device.cpu(), 6)) {
      assertArrayEquals(logits(a), logits(b));
      assertEquals(a.fingerprint(), b.fingerprint());
      assertNotEquals(a.fingerprint(), c.fingerprint());
      assertTrue(maxDiff(logits(a), logits(c)) > 1e-3);
    }
    try (CausalLM tiny = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu());
        CausalLM seeded = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu(), 99)) {
      assertEquals(ModelConfig.tiny(), tiny.config());
      assertEquals(CausalLM.create(ModelConfig.tiny(), Device.cpu(), CausalLM.DEFAULT_SEED).fingerprint(),
          tiny.fingerprint());
      assertNotEquals(tiny.fingerprint(), seeded.fingerprint());
    }
    assertThrows(IllegalArgumentException.class, () -> CausalLM.load("builtin:huge", Storage.local(), Device.cpu()));
  }

  @Test
  void float32SaveReloadsBitExactAndBfloat16WithinRounding() throws Exception {
    try (CausalLM model = CausalLM.create(SMALL, Device.cpu(), 3)) {
      String f32 = dir.resolve("f32").toString();
      String bf16 = dir.resolve("bf16").toString();
      model.save(f32, Storage.local(), DataType.FLOAT32);
      model.save(bf16, Storage.local(), DataType.BFLOAT16);
      try (CausalLM a = CausalLM.load(f32, Storage.local(), Device.cpu());
          CausalLM b = CausalLM.load(bf16, Storage.local(), Device.cpu(), CausalLM.DEFAULT_SEED, DataType.FLOAT32)) {
        assertArrayEquals(logits(model), logits(a));
        float diff = maxDiff(logits(model), logits(b));
        assertTrue(diff > 0 && diff < 0.05, "bf16 logits differ by " + diff);
        float[] original = model.parameters().get("model.norm.weight").getArray().toFloatArray();
        float[] rounded = b.parameters().get("model.norm.weight").getArray().toFloatArray();
        for (int i = 0; i < original.length; i++) {
          assertEquals(Safetensors.bf16ToFloat(Safetensors.floatToBf16(original[i])), rounded[i]);
        }
        assertEquals(a.fingerprint(), ModelFolder.fingerprint(Storage.local(), f32));
      }
      try (var files = Files.list(Path.of(f32))) {
        assertEquals(List.of(), files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".crc")).toList(),
            "no Hadoop checksum files in a model folder");
      }
      JsonNode config = Json.MAPPER.readTree(Path.of(bf16, "config.json").toFile());
      assertEquals("bfloat16", config.get("torch_dtype").asText());
      JsonNode generation = Json.MAPPER.readTree(Path.of(bf16, "generation_config.json").toFile());
      assertEquals(0, generation.get("eos_token_id").asInt());
      assertEquals(1, generation.get("pad_token_id").asInt());
    }
  }

  @Test
  void shardedSaveWritesAnIndexAndReloadsIdentically() throws Exception {
    try (CausalLM model = CausalLM.create(SMALL, Device.cpu(), 3)) {
      String folder = dir.resolve("sharded").toString();
      model.save(dir.resolve("sharded").toString(), Storage.local(), DataType.FLOAT32);
      model.save(folder, Storage.local(), DataType.FLOAT32, 20_000);
      assertFalse(Files.exists(Path.of(folder, "model.safetensors")), "stale single file removed");
      JsonNode index = Json.MAPPER.readTree(Path.of(folder, "model.safetensors.index.json").toFile());
      assertEquals(SMALL.numParameters() * 4, index.get("metadata").get("total_size").asLong());
      assertEquals(model.parameters().size(), index.get("weight_map").size());
      long shards = Files.list(Path.of(folder)).filter(p -> p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors")).count();
      assertTrue(shards > 2, "shards: " + shards);
      try (CausalLM again = CausalLM.load(folder, Storage.local(), Device.cpu())) {
        assertArrayEquals(logits(model), logits(again));
      }
      // Through a scheme-qualified URI, as hdfs: and s3a: paths go, via Hadoop's FileSystem.
      try (CausalLM viaUri = CausalLM.load(Path.of(folder).toUri().toString(), Storage.local(), Device.cpu())) {
        assertArrayEquals(logits(model), logits(viaUri));
      }
      Files.delete(Path.of(folder, "model-00002-of-" + String.format("%05d", shards) + ".safetensors"));
      String message = assertThrows(IllegalArgumentException.class,
          () -> CausalLM.load(folder, Storage.local(), Device.cpu())).getMessage();
      assertTrue(message.contains("shard model-00002-of-") && message.contains("missing"), message);
    }
  }

  @Test
  void tiedModelsOmitTheHeadLikeTransformersAndUntiedModelsKeepIt() throws Exception {
    ModelConfig tied = ModelConfig.llama(64, 32, 48, 1, 4, 4, true);
    try (CausalLM model = CausalLM.create(tied, Device.cpu(), 1)) {
      assertFalse(model.parameters().containsKey("lm_head.weight"));
      model.save(dir.resolve("tied").toString(), Storage.local(), DataType.FLOAT32);
      assertFalse(tensorNames(dir.resolve("tied/model.safetensors").toString()).contains("lm_head.weight"));
    }
    try (CausalLM model = CausalLM.create(SMALL, Device.cpu(), 1)) {
      model.save(dir.resolve("untied").toString(), Storage.local(), DataType.FLOAT32);
      assertTrue(tensorNames(dir.resolve("untied/model.safetensors").toString()).contains("lm_head.weight"));
    }
  }

  private static List<String> tensorNames(String file) {
    List<String> names = new ArrayList<>();
    Safetensors.read(Storage.local(), file, (e, data) -> names.add(e.name()));
    return names;
  }

  /** Rewrites a folder's weights, letting {@code edit} drop, add or reshape tensors. */
  private void rewrite(String folder, java.util.function.Consumer<Map<String, Safetensors.Tensor>> edit)
      throws Exception {
    String file = Storage.join(folder, "model.safetensors");
    Map<String, Safetensors.Tensor> tensors = new LinkedHashMap<>();
    Safetensors.read(Storage.local(), file, (e, data) -> {
      ByteBuffer copy = ByteBuffer.allocate(data.remaining()).order(data.order()).put(data).flip();
      tensors.put(e.name(), Safetensors.Tensor.of(e.name(), e.shape(), copy));
    });
    edit.accept(tensors);
    try (OutputStream out = Files.newOutputStream(Path.of(file))) {
      Safetensors.write(out, new ArrayList<>(tensors.values()), Safetensors.Dtype.F32);
    }
  }

  @Test
  void missingUnexpectedAndMisshapenTensorsFailNamingFileAndTensor() throws Exception {
    String folder = dir.resolve("broken").toString();
    try (CausalLM model = CausalLM.create(SMALL, Device.cpu(), 1)) {
      model.save(folder, Storage.local(), DataType.FLOAT32);
    }
    rewrite(folder, t -> t.remove("model.layers.1.mlp.up_proj.weight"));
    String missing = assertThrows(IllegalArgumentException.class,
        () -> CausalLM.load(folder, Storage.local(), Device.cpu())).getMessage();
    assertTrue(missing.contains(folder) && missing.contains("model.layers.1.mlp.up_proj.weight is missing"), missing);

    rewrite(folder, t -> t.put("model.layers.1.mlp.up_proj.weight", Safetensors.Tensor.of(
        "model.layers.1.mlp.up_proj.weight", new long[] {48, 31}, ByteBuffer.allocate(48 * 31 * 4))));
    String shape = assertThrows(IllegalArgumentException.class,
        () -> CausalLM.load(folder, Storage.local(), Device.cpu())).getMessage();
    assertTrue(shape.contains(Storage.join(folder, "model.safetensors"))
        && shape.contains("model.layers.1.mlp.up_proj.weight has shape [48, 31]"), shape);

    rewrite(folder, t -> {
      t.put("model.layers.1.mlp.up_proj.weight", Safetensors.Tensor.of("model.layers.1.mlp.up_proj.weight",
          new long[] {48, 32}, ByteBuffer.allocate(48 * 32 * 4)));
      t.put("model.layers.2.mlp.up_proj.weight", Safetensors.Tensor.of("model.layers.2.mlp.up_proj.weight",
          new long[] {48, 32}, ByteBuffer.allocate(48 * 32 * 4)));
      t.put("model.layers.0.self_attn.rotary_emb.inv_freq", Safetensors.Tensor.of(
          "model.layers.0.self_attn.rotary_emb.inv_freq", new long[] {4}, ByteBuffer.allocate(16)));
    });
    String unexpected = assertThrows(IllegalArgumentException.class,
        () -> CausalLM.load(folder, Storage.local(), Device.cpu())).getMessage();
    assertTrue(unexpected.contains("unexpected tensor model.layers.2.mlp.up_proj.weight")
        && unexpected.contains("1 unexpected"), unexpected);

    Files.delete(Path.of(folder, "config.json"));
    assertTrue(assertThrows(IllegalArgumentException.class,
        () -> CausalLM.load(folder, Storage.local(), Device.cpu())).getMessage().contains("config.json: missing"));
  }

  @Test
  void savingCopiesTheTokenizerAndGenerationConfigOfTheSourceFolder() throws Exception {
    String source = dir.resolve("source").toString();
    try (CausalLM model = CausalLM.create(SMALL, Device.cpu(), 1)) {
      model.save(source, Storage.local(), DataType.FLOAT32);
    }
    Files.writeString(Path.of(source, "tokenizer.json"), "{\"model\": {\"type\": \"BPE\"}}");
    Files.writeString(Path.of(source, "tokenizer_config.json"), "{\"eos_token\": \"<|endoftext|>\"}");
    Files.writeString(Path.of(source, "generation_config.json"), "{\"eos_token_id\": 0, \"do_sample\": true}");
    String copy = dir.resolve("copy").toString();
    try (CausalLM loaded = CausalLM.load(source, Storage.local(), Device.cpu())) {
      loaded.save(copy, Storage.local(), DataType.FLOAT32);
    }
    for (String name : List.of("tokenizer.json", "tokenizer_config.json", "generation_config.json")) {
      assertEquals(Files.readString(Path.of(source, name)), Files.readString(Path.of(copy, name)), name);
    }
    assertEquals(ModelFolder.fingerprint(Storage.local(), source), ModelFolder.fingerprint(Storage.local(), copy),
        "same config and weights, same fingerprint wherever the folder lives");
  }

  @Test
  void savingTheBuiltInModelShipsTheBuiltInTokenizer() throws Exception {
    if (getClass().getClassLoader().getResource(CausalLM.BUILTIN_TOKENIZER + "tokenizer.json") == null) {
      try (CausalLM tiny = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu())) {
        String message = assertThrows(IllegalStateException.class,
            () -> tiny.save(dir.resolve("no-tokenizer").toString(), Storage.local(), DataType.FLOAT32)).getMessage();
        assertTrue(message.contains("built-in tokenizer"), message);
      }
    }
    assumeTrue(getClass().getClassLoader().getResource(CausalLM.BUILTIN_TOKENIZER + "tokenizer.json") != null,
        "the built-in tokenizer resources come from the sampledata branch");
    String folder = dir.resolve("tiny").toString();
    try (CausalLM tiny = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu())) {
      tiny.save(folder, Storage.local(), DataType.BFLOAT16);
    }
    assertTrue(Files.exists(Path.of(folder, "tokenizer.json")));
    assertTrue(Files.exists(Path.of(folder, "tokenizer_config.json")));
  }

  @Test
  void loadWeightsReplacesValuesInPlaceKeepingGradientsOnAndFreeingTheOldArrays() {
    try (CausalLM model = CausalLM.create(SMALL, Device.cpu(), 1); CausalLM other = CausalLM.create(SMALL, Device.cpu(), 2)) {
      String folder = dir.resolve("other").toString();
      other.save(folder, Storage.local(), DataType.FLOAT32);
      Map<String, NDArray> before = new LinkedHashMap<>();
      model.parameters().forEach((n, p) -> before.put(n, p.getArray()));
      int arrays = model.manager().getManagedArrays().size();
      model.loadWeights(folder, Storage.local());
      assertArrayEquals(logits(other), logits(model));
      model.parameters().forEach((n, p) -> {
        assertSame(before.get(n), p.getArray(), n);
        assertTrue(p.getArray().hasGradient(), n);
      });
      assertEquals(arrays, model.manager().getManagedArrays().size());
    }
  }

  @Test
  void devicesParseAndAMissingGpuIsAClearError() {
    assertEquals(Device.cpu(), CausalLM.device("cpu"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> CausalLM.device("gpu:1")).getMessage()
        .contains("GPU"));
    assertThrows(IllegalArgumentException.class, () -> CausalLM.device("tpu"));
    assertEquals(DataType.BFLOAT16, CausalLM.saveDtype("bfloat16"));
    assertEquals(DataType.FLOAT16, CausalLM.saveDtype("float16"));
    assertThrows(IllegalArgumentException.class, () -> CausalLM.saveDtype("float64"));
  }
}
