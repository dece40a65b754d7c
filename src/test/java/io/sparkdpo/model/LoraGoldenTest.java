package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * LoRA against tools/golden/lora_golden.py, PEFT's definition written out in torch over the independent Llama of
 * llama_golden.py (float64): a PEFT adapter folder loaded onto its base gives the reference's response log-probs,
 * and so does the merged folder; the base alone (adapters off) gives the base's; the adapter folder round-trips.
 */
class LoraGoldenTest {
  static final double TOLERANCE = 1e-5;
  static final Storage STORAGE = Storage.local();

  static String folder(String name) {
    return GoldenReferenceTest.folder("lora/" + name);
  }

  static JsonNode golden(String name) throws Exception {
    return Json.MAPPER.readTree(Path.of(folder(name), "golden.json").toFile());
  }

  static CausalLM base(String name) {
    return CausalLM.load(folder(name) + "/base", STORAGE, Device.cpu(), CausalLM.DEFAULT_SEED, DataType.FLOAT32);
  }

  static SequenceLogProbs.Batch logProbs(CausalLM model, NDManager m, JsonNode g) {
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    for (JsonNode s : g.get("sequences")) {
      prompts.add(GoldenReferenceTest.ints(s.get("prompt")));
      responses.add(GoldenReferenceTest.ints(s.get("response")));
    }
    return new SequenceLogProbs(model).compute(m, prompts, responses, false);
  }

  /** The largest |Java - golden| over sums and means of the golden sequences, for the given golden fields. */
  static double worst(CausalLM model, JsonNode g, String sumKey, String meanKey) {
    try (NDManager m = NDManager.newBaseManager()) {
      SequenceLogProbs.Batch b = logProbs(model, m, g);
      double[] sums = b.sums();
      double[] means = b.means();
      double worst = 0;
      for (int i = 0; i < sums.length; i++) {
        JsonNode s = g.get("sequences").get(i);
        worst = Math.max(worst, Math.abs(sums[i] - s.get(sumKey).asDouble()));
        worst = Math.max(worst, Math.abs(means[i] - s.get(meanKey).asDouble()));
      }
      return worst;
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama_all_linear_lm_head", "qwen2_q_v_tied"})
  void aPeftAdapterGivesTheReferenceLogProbsAndSwitchedOffTheBase(String name) throws Exception {
    JsonNode g = golden(name);
    try (CausalLM model = base(name)) {
      double baseOnly = worst(model, g, "base_sum_logp", "base_mean_logp");
      assertTrue(baseOnly < TOLERANCE, name + " base: " + baseOnly);
      double ignored = worst(model, g, "sum_logp", "mean_logp");
      assertTrue(ignored > 1, name + ": the adapter must matter for this test to mean anything: " + ignored);
      model.loadAdapter(folder(name) + "/adapter", STORAGE);
      assertEquals(g.get("r").asInt(), model.peft().r());
      assertEquals(g.get("scaling").asDouble(), model.peft().scaling(), 0);
      for (boolean fused : new boolean[] {true, false}) {
        model.useFusedOps(fused);
        double adapted = worst(model, g, "sum_logp", "mean_logp");
        assertTrue(adapted < TOLERANCE, name + " fused=" + fused + ": base + adapter off by " + adapted);
        try (var off = model.adapters(CausalLM.AdapterMode.NONE)) {
          double off64 = worst(model, g, "base_sum_logp", "base_mean_logp");
          assertTrue(off64 < TOLERANCE, name + " fused=" + fused + ": adapters off, off by " + off64);
        }
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama_all_linear_lm_head", "qwen2_q_v_tied"})
  void theMergedFolderLoadsAsAPlainModelWithTheAdaptedLogProbs(String name, @TempDir Path tmp) throws Exception {
    JsonNode g = golden(name);
    String merged = tmp.resolve("merged").toString();
    try (CausalLM model = base(name)) {
      model.loadAdapter(folder(name) + "/adapter", STORAGE);
      float[] before = logits(model);
      float[] baseBefore;
      try (var off = model.adapters(CausalLM.AdapterMode.NONE)) {
        baseBefore = logits(model);
      }
      model.saveMerged(merged, STORAGE, DataType.FLOAT32, ModelFolder.DEFAULT_MAX_SHARD_BYTES);
      assertArrayEquals(before, logits(model), 0f, "merging writes a folder, the model stays as it was");
      try (var off = model.adapters(CausalLM.AdapterMode.NONE)) {
        assertArrayEquals(baseBefore, logits(model), 0f, "the base weights are untouched");
      }
    }
    try (CausalLM plain = CausalLM.load(merged, STORAGE, Device.cpu())) {
      double worst = worst(plain, g, "sum_logp", "mean_logp");
      assertTrue(worst < TOLERANCE, name + " merged: off by " + worst);
      assertTrue(!plain.hasAdapters());
    }
  }

  @Test
  void savingAndLoadingTheAdapterRoundTripsBitForBit(@TempDir Path tmp) throws Exception {
    String name = "llama_all_linear_lm_head";
    String saved = tmp.resolve("saved").toString();
    try (CausalLM model = base(name); CausalLM again = base(name)) {
      model.loadAdapter(folder(name) + "/adapter", STORAGE);
      LoraTest.perturbAdapters(model, 0.01f); // values no file has held yet
      model.saveAdapter(saved, STORAGE);
      again.loadAdapter(saved, STORAGE);
      Map<String, Parameter> a = model.trainableParameters();
      Map<String, Parameter> b = again.trainableParameters();
      assertEquals(new ArrayList<>(a.keySet()), new ArrayList<>(b.keySet()));
      a.forEach((k, p) -> assertArrayEquals(p.getArray().toFloatArray(), b.get(k).getArray().toFloatArray(), 0f, k));
      assertArrayEquals(logits(model), logits(again), 0f);
      assertEquals(model.peft(), again.peft());
      assertNotEquals(model.adapterFingerprint(), again.adapterFingerprint(), "a saved folder has its own fingerprint");
      JsonNode config = Json.MAPPER.readTree(Path.of(saved, CausalLM.ADAPTER_CONFIG).toFile());
      assertEquals("LORA", config.get("peft_type").asText());
      assertEquals("CAUSAL_LM", config.get("task_type").asText());
      assertEquals(4, config.get("r").asInt());
      assertEquals(8.0, config.get("lora_alpha").asDouble());
      assertEquals(0.0, config.get("lora_dropout").asDouble());
      assertEquals("none", config.get("bias").asText());
      assertEquals(false, config.get("fan_in_fan_out").asBoolean());
      assertEquals(true, config.get("inference_mode").asBoolean());
      assertEquals(folder(name) + "/base", config.get("base_model_name_or_path").asText());
      assertEquals(List.of("lm_head"), List.of(config.get("modules_to_save").get(0).asText()));
      assertEquals(7, config.get("target_modules").size());
      // The header names PEFT's keys, float32.
      try (var in = Files.newInputStream(Path.of(saved, CausalLM.ADAPTER_WEIGHTS))) {
        var header = Safetensors.readHeader(in, saved, Files.size(Path.of(saved, CausalLM.ADAPTER_WEIGHTS)));
        List<String> names = header.entries().stream().map(Safetensors.Entry::name).toList();
        assertTrue(names.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), names.toString());
        assertTrue(names.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"), names.toString());
        assertTrue(names.contains("base_model.model.lm_head.weight"), names.toString());
        assertEquals(29, names.size());
        header.entries().forEach(e -> assertEquals(Safetensors.Dtype.F32, e.dtype(), e.name()));
        assertEquals("pt", header.metadata().get("format"));
      }
    }
  }

  @Test
  void aReferenceAdapterServesReferencePassesBesideAFreshTrainedOne() throws Exception {
    String name = "qwen2_q_v_tied";
    JsonNode g = golden(name);
    try (CausalLM model = base(name)) {
      model.addLora(PeftSettings.defaults(), 7);
      model.loadReferenceAdapter(folder(name) + "/adapter", STORAGE);
      assertTrue(worst(model, g, "base_sum_logp", "base_mean_logp") < TOLERANCE, "fresh adapter: the base");
      try (var ref = model.adapters(CausalLM.AdapterMode.REFERENCE)) {
        double worst = worst(model, g, "sum_logp", "mean_logp");
        assertTrue(worst < TOLERANCE, "reference = base + loaded adapter: off by " + worst);
      }
      for (Parameter p : model.trainableParameters().values()) {
        assertTrue(p.getName().contains(".lora_"), "only the trained adapter trains: " + p.getName());
      }
      assertEquals(28, model.trainableParameters().size());
    }
  }

  static float[] logits(CausalLM model) {
    try (NDManager m = NDManager.newBaseManager();
        var out = model.logits(m.create(new int[] {3, 17, 40, 8, 63, 1, 22, 60}, new ai.djl.ndarray.types.Shape(2, 4)),
            false)) {
      return out.toFloatArray();
    }
  }

  /**
   * Writes, per case, the base folder, a Java-saved adapter (trained away from the fixture's values) and the Java
   * log-probs of base + adapter, for {@code tools/golden/lora_golden.py verify} (PEFT's layout checked, and the
   * independent reference recomputes the log-probs). The test itself checks the folder reloads to the same numbers.
   */
  @ParameterizedTest
  @ValueSource(strings = {"llama_all_linear_lm_head", "qwen2_q_v_tied"})
  void writesJavaAdapterFoldersForThePythonVerifier(String name) throws Exception {
    Path out = Path.of(System.getProperty("project.basedir", "."), "target", "golden-java-lora", name);
    Files.createDirectories(out.resolve("base"));
    for (String f : List.of("config.json", "model.safetensors")) {
      Files.copy(Path.of(folder(name), "base", f), out.resolve("base").resolve(f),
          java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
    JsonNode g = golden(name);
    double[] sums;
    double[] means;
    int[] counts;
    try (CausalLM model = base(name); NDManager m = NDManager.newBaseManager()) {
      model.loadAdapter(folder(name) + "/adapter", STORAGE);
      LoraTest.perturbAdapters(model, 0.02f);
      model.saveAdapter(out.resolve("adapter").toString(), STORAGE);
      SequenceLogProbs.Batch b = logProbs(model, m, g);
      sums = b.sums();
      means = b.means();
      counts = b.counts();
    }
    ObjectNode java = Json.MAPPER.createObjectNode();
    var seqs = java.putArray("sequences");
    for (int i = 0; i < sums.length; i++) {
      ObjectNode s = seqs.addObject();
      s.set("prompt", g.get("sequences").get(i).get("prompt"));
      s.set("response", g.get("sequences").get(i).get("response"));
      s.put("sum_logp", sums[i]).put("mean_logp", means[i]).put("count", counts[i]);
    }
    Files.writeString(out.resolve("java-logprobs.json"), java.toPrettyString());
    try (CausalLM again = base(name); NDManager m = NDManager.newBaseManager()) {
      again.loadAdapter(out.resolve("adapter").toString(), STORAGE);
      assertArrayEquals(sums, logProbs(again, m, g).sums(), 0.0);
    }
  }

  /** Copies the llama case's adapter folder, applies {@code change}, and returns the loader's message. */
  private static String refusal(Path tmp, Consumer<Path> change) throws Exception {
    String name = "llama_all_linear_lm_head";
    Path copy = tmp.resolve("adapter");
    Files.createDirectories(copy);
    for (String f : List.of(CausalLM.ADAPTER_CONFIG, CausalLM.ADAPTER_WEIGHTS)) {
      Files.copy(Path.of(folder(name), "adapter", f), copy.resolve(f));
    }
    change.accept(copy);
    try (CausalLM model = base(name)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> model.loadAdapter(copy.toString(), STORAGE));
      assertTrue(!model.hasAdapters(), "a refused folder leaves no adapter behind");
      return e.getMessage();
    }
  }

  private static void editConfig(Path folder, Consumer<ObjectNode> edit) {
    try {
      Path f = folder.resolve(CausalLM.ADAPTER_CONFIG);
      ObjectNode n = (ObjectNode) Json.MAPPER.readTree(f.toFile());
      edit.accept(n);
      Files.writeString(f, n.toPrettyString());
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Test
  void badAdapterFoldersFailNamingFileAndTensorOrField(@TempDir Path tmp) throws Exception {
    String rank = refusal(tmp.resolve("r"), f -> editConfig(f, n -> n.put("r", 8)));
    assertTrue(rank.contains("adapter_model.safetensors: tensor base_model.model.model.layers.0.self_attn.q_proj"
        + ".lora_A.weight has shape [4, 32]") && rank.contains("r=8"), rank);
    String target = refusal(tmp.resolve("t"), f -> editConfig(f, n -> n.putArray("target_modules").add("qkv_proj")));
    assertTrue(target.contains("adapter_config.json: target_modules names \"qkv_proj\""), target);
    String fewer = refusal(tmp.resolve("u"), f -> editConfig(f, n -> n.putArray("target_modules").add("q_proj")));
    assertTrue(fewer.contains("unexpected tensor base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"),
        fewer);
    String more = refusal(tmp.resolve("m"), f -> editConfig(f, n -> n.putArray("modules_to_save").add("lm_head")
        .add("embed_tokens")));
    assertTrue(more.contains("tensor base_model.model.model.embed_tokens.weight is missing"), more);
    String rs = refusal(tmp.resolve("rs"), f -> editConfig(f, n -> n.put("use_rslora", true)));
    assertTrue(rs.contains("adapter_config.json: use_rslora must be false"), rs);
    String type = refusal(tmp.resolve("p"), f -> editConfig(f, n -> n.put("peft_type", "IA3")));
    assertTrue(type.contains("peft_type must be LORA"), type);
    String none = refusal(tmp.resolve("w"), f -> {
      try {
        Files.delete(f.resolve(CausalLM.ADAPTER_WEIGHTS));
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    assertTrue(none.contains("adapter_model.safetensors: not found"), none);
  }

  @Test
  void aTiedModelRefusesModulesToSave() {
    try (CausalLM model = base("qwen2_q_v_tied")) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> model.addLora(new PeftSettings("lora", 4, 8, 0, null, List.of("lm_head")), 1));
      assertTrue(e.getMessage().contains("tie_word_embeddings"), e.getMessage());
    }
  }
}
