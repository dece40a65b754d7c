package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Java model against tools/golden/llama_golden.py, an independent float64 implementation of the same
 * architectures: checkpoints it wrote by hand (F32, BF16, F16, sharded) must load here and give its logits,
 * response log-probs and greedy continuations. The last test writes Java checkpoints for the script's
 * {@code verify} command (see docs/model.md).
 */
class GoldenReferenceTest {
  static final double TOLERANCE = 1e-4;
  static final List<String> CASES = List.of("llama_gqa_tied_f32", "llama_biases_untied_bf16",
      "qwen2_qkv_bias_f16", "mistral_window_sharded_f32", "llama3_rope_scaling_f32", "qwen2_linear_rope_scaling_f32",
      "llama_head_dim_f32");

  static String folder(String name) {
    return Path.of(System.getProperty("project.basedir", "."), "src/test/resources/io/sparkdpo/model/golden", name)
        .toString();
  }

  /** The fixtures are F32, BF16 and F16 files; against the float64 reference they are read widened to float32. */
  static CausalLM loadFloat32(String folder) {
    return CausalLM.load(folder, Storage.local(), Device.cpu(), CausalLM.DEFAULT_SEED, DataType.FLOAT32);
  }

  static JsonNode golden(String name) throws Exception {
    return Json.MAPPER.readTree(Path.of(folder(name), "golden.json").toFile());
  }

  static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  /** Response log-probs of the golden file's sequences under {@code model}. */
  static SequenceLogProbs.Batch logProbs(CausalLM model, NDManager manager, JsonNode g) {
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    for (JsonNode s : g.get("sequences")) {
      prompts.add(ints(s.get("prompt")));
      responses.add(ints(s.get("response")));
    }
    return new SequenceLogProbs(model).compute(manager, prompts, responses, false);
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama_gqa_tied_f32", "llama_biases_untied_bf16", "qwen2_qkv_bias_f16",
      "mistral_window_sharded_f32", "llama3_rope_scaling_f32", "qwen2_linear_rope_scaling_f32", "llama_head_dim_f32"})
  void logitsMatchTheIndependentReferenceWithFusedAndExplicitOps(String name) throws Exception {
    JsonNode g = golden(name);
    try (CausalLM model = loadFloat32(folder(name));
        NDManager manager = NDManager.newBaseManager()) {
      for (boolean fused : new boolean[] {true, false}) {
        model.useFusedOps(fused);
        double worst = worstLogitDifference(model, manager, g);
        assertTrue(worst < TOLERANCE, name + " fused=" + fused + ": max |logit difference| " + worst);
      }
    }
  }

  /** The largest |logit - golden logit| over the golden file's sequences, run as one right-padded batch. */
  static double worstLogitDifference(CausalLM model, NDManager manager, JsonNode g) {
    JsonNode sequences = g.get("sequences");
    int length = 0;
    for (JsonNode s : sequences) {
      length = Math.max(length, s.get("prompt").size() + s.get("response").size());
    }
    int[] ids = new int[sequences.size() * length];
    for (int i = 0; i < sequences.size(); i++) {
      int[] p = ints(sequences.get(i).get("prompt"));
      int[] r = ints(sequences.get(i).get("response"));
      System.arraycopy(p, 0, ids, i * length, p.length);
      System.arraycopy(r, 0, ids, i * length + p.length, r.length);
    }
    int vocab = model.config().vocabSize();
    double worst = 0;
    try (NDArray logits = model.logits(manager.create(ids, new Shape(sequences.size(), length)), false)) {
      float[] values = logits.toFloatArray();
      for (int i = 0; i < sequences.size(); i++) {
        JsonNode expected = sequences.get(i).get("logits");
        for (int t = 0; t < expected.size(); t++) {
          for (int v = 0; v < vocab; v++) {
            worst = Math.max(worst, Math.abs(values[(i * length + t) * vocab + v] - expected.get(t).get(v).asDouble()));
          }
        }
      }
    }
    return worst;
  }

  /**
   * The golden tests above would catch a model that ignored these keys: the same weights with the key removed (or
   * the window switched off) give logits far outside the tolerance.
   */
  @ParameterizedTest
  @CsvSource({
      "llama3_rope_scaling_f32,       rope_scaling",
      "qwen2_linear_rope_scaling_f32, rope_scaling",
      "mistral_window_sharded_f32,    sliding_window"})
  void ignoringTheKeyWouldMissTheGoldenLogitsByFar(String name, String key, @TempDir Path tmp) throws Exception {
    Storage storage = Storage.local();
    Path copy = tmp.resolve(name);
    Files.createDirectories(copy);
    try (var files = Files.list(Path.of(folder(name)))) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Files.copy(f, copy.resolve(f.getFileName()));
      }
    }
    ObjectNode config = (ObjectNode) Json.MAPPER.readTree(copy.resolve("config.json").toFile());
    assertTrue(config.hasNonNull(key));
    config.putNull(key);
    Files.writeString(copy.resolve("config.json"), config.toPrettyString());
    JsonNode g = golden(name);
    try (CausalLM model = CausalLM.load(folder(name), storage, Device.cpu());
        CausalLM without = CausalLM.load(copy.toString(), storage, Device.cpu());
        NDManager manager = NDManager.newBaseManager()) {
      double with = worstLogitDifference(model, manager, g);
      double ignored = worstLogitDifference(without, manager, g);
      assertTrue(with < TOLERANCE, name + ": " + with);
      assertTrue(ignored > 1000 * TOLERANCE, name + " without " + key + ": max |logit difference| only " + ignored);
    }
  }

  @Test
  void anExplicitHeadDimShapesTheProjections() {
    try (CausalLM model = CausalLM.load(folder("llama_head_dim_f32"), Storage.local(), Device.cpu())) {
      ModelConfig c = model.config();
      assertEquals(16, c.headDim());
      assertTrue(c.headDim() * c.numAttentionHeads() != c.hiddenSize());
      var p = model.parameters();
      assertEquals(new Shape(64, 32), p.get("model.layers.0.self_attn.q_proj.weight").getArray().getShape());
      assertEquals(new Shape(32, 32), p.get("model.layers.0.self_attn.k_proj.weight").getArray().getShape());
      assertEquals(new Shape(32, 64), p.get("model.layers.1.self_attn.o_proj.weight").getArray().getShape());
      assertEquals(c.numParameters(), model.numParameters());
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama_gqa_tied_f32", "llama_biases_untied_bf16", "qwen2_qkv_bias_f16",
      "mistral_window_sharded_f32", "llama3_rope_scaling_f32", "qwen2_linear_rope_scaling_f32", "llama_head_dim_f32"})
  void responseLogProbsMatchTheIndependentReference(String name) throws Exception {
    JsonNode g = golden(name);
    try (CausalLM model = loadFloat32(folder(name));
        NDManager manager = NDManager.newBaseManager()) {
      SequenceLogProbs.Batch batch = logProbs(model, manager, g);
      int n = g.get("sequences").size();
      double[] sums = batch.sums();
      double[] means = batch.means();
      int[] counts = batch.counts();
      for (int i = 0; i < n; i++) {
        JsonNode s = g.get("sequences").get(i);
        assertEquals(s.get("sum_logp").asDouble(), sums[i], TOLERANCE, name + " sequence " + i + " sum");
        assertEquals(s.get("mean_logp").asDouble(), means[i], TOLERANCE, name + " sequence " + i + " mean");
        assertEquals(s.get("count").asInt(), counts[i]);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama_gqa_tied_f32", "llama_biases_untied_bf16", "qwen2_qkv_bias_f16",
      "mistral_window_sharded_f32", "llama3_rope_scaling_f32", "qwen2_linear_rope_scaling_f32", "llama_head_dim_f32"})
  void greedyContinuationsMatchTheReferenceWithAndWithoutTheCache(String name) throws Exception {
    JsonNode g = golden(name);
    try (CausalLM model = loadFloat32(folder(name))) {
      List<int[]> prompts = new ArrayList<>();
      for (JsonNode item : g.get("greedy")) {
        prompts.add(ints(item.get("prompt")));
      }
      // No stop tokens: the reference ran a fixed number of steps. Prompts differ in length: left padding.
      Generator generator = new Generator(model, java.util.Set.of());
      int steps = g.get("greedy").get(0).get("tokens").size();
      for (boolean cache : new boolean[] {true, false}) {
        List<Generator.Generation> out = generator.generate(prompts, SamplingSettings.greedy(steps), cache);
        for (int i = 0; i < prompts.size(); i++) {
          assertArrayEquals(ints(g.get("greedy").get(i).get("tokens")), out.get(i).tokens(),
              name + " prompt " + i + " cache=" + cache);
        }
      }
    }
  }

  /**
   * Loads each golden checkpoint, saves it as float32 (single file and sharded) and bfloat16, reloads it, and
   * writes the folders plus the Java log-probs to target/golden-java for
   * {@code /usr/bin/python3 tools/golden/llama_golden.py verify}.
   */
  @Test
  void writesCheckpointsForThePythonReferenceToVerify() throws Exception {
    Path root = Path.of(System.getProperty("project.build.directory", "target"), "golden-java");
    Storage storage = Storage.local();
    storage.delete(root.toString());
    for (String name : CASES) {
      JsonNode g = golden(name);
      try (CausalLM model = loadFloat32(folder(name))) {
        writeFolder(model, g, root.resolve(name + "-f32").toString(), DataType.FLOAT32, Long.MAX_VALUE);
        writeFolder(model, g, root.resolve(name + "-bf16-sharded").toString(), DataType.BFLOAT16, 4096);
      }
    }
    assertEquals(2 * CASES.size(), Files.list(root).count());
  }

  private static void writeFolder(CausalLM model, JsonNode g, String folder, DataType dtype, long shardBytes) {
    Storage storage = Storage.local();
    model.save(folder, storage, dtype, shardBytes);
    try (CausalLM reloaded = loadFloat32(folder);
        NDManager manager = NDManager.newBaseManager()) {
      SequenceLogProbs.Batch batch = logProbs(reloaded, manager, g);
      ObjectNode out = JsonNodeFactory.instance.objectNode();
      ArrayNode items = out.putArray("sequences");
      for (int i = 0; i < g.get("sequences").size(); i++) {
        ObjectNode item = items.addObject();
        item.set("prompt", g.get("sequences").get(i).get("prompt"));
        item.set("response", g.get("sequences").get(i).get("response"));
        item.put("sum_logp", batch.sums()[i]);
        item.put("mean_logp", batch.means()[i]);
        item.put("count", batch.counts()[i]);
      }
      storage.writeString(Storage.join(folder, "java-logprobs.json"), out.toPrettyString());
    }
  }
}
