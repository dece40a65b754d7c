package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA on a reward model, as PEFT's SEQ_CLS task: adapters on the frozen classifier and the score head trained whole
 * (PeftModelForSequenceClassification puts "classifier" and "score" in modules_to_save). Against
 * tools/golden/reward_golden.py's llama_pad1_lora: a PEFT adapter folder with random adapters and score head, and
 * the float64 scores of the classifier with it.
 */
class RewardLoraTest {
  private static final Storage STORAGE = Storage.local();
  @TempDir
  Path tmp;

  private static String golden(String name) {
    return RewardModelTest.folder(name);
  }

  @Test
  void aPeftSeqClsAdapterScoresAsTheGoldenAndMergesIntoAPlainClassifier() throws Exception {
    JsonNode g = Json.MAPPER.readTree(Path.of(golden("llama_pad1_lora"), "golden.json").toFile());
    JsonNode base = Json.MAPPER.readTree(Path.of(golden("llama_pad1"), "golden.json").toFile());
    int[][] rows = RewardModelTest.rows(g.get("rows"));
    try (CausalLM model = CausalLM.load(golden("llama_pad1"), STORAGE, Device.cpu())) {
      model.loadAdapter(golden("llama_pad1_lora"), STORAGE);
      PeftSettings peft = model.peft();
      assertEquals(List.of(), peft.modulesToSave(), "classifier and score are implied by SEQ_CLS");
      assertEquals(List.of("q_proj", "v_proj", "down_proj"), peft.targetModules());
      float[] scores = RewardModelTest.scores(model, rows);
      for (int i = 0; i < scores.length; i++) {
        assertEquals(g.get("scores").get(i).asDouble(), scores[i], 1e-5, "row " + i + " with the adapter");
      }
      try (CausalLM.AdapterScope ignored = model.adapters(CausalLM.AdapterMode.NONE)) {
        float[] plain = RewardModelTest.scores(model, rows);
        for (int i = 0; i < plain.length; i++) {
          assertEquals(base.get("scores").get(i).asDouble(), plain[i], 1e-5, "row " + i + " of the base alone");
        }
      }
      String merged = tmp.resolve("merged").toString();
      model.saveMerged(merged, STORAGE, DataType.FLOAT32, ModelFolder.DEFAULT_MAX_SHARD_BYTES);
      try (CausalLM m = CausalLM.load(merged, STORAGE, Device.cpu())) {
        assertEquals("LlamaForSequenceClassification", m.config().architecture());
        assertArrayEquals(scores, RewardModelTest.scores(m, rows), 1e-5f);
      }

      // Saved again, the folder is what PEFT writes for SEQ_CLS and loads back bit for bit.
      String saved = tmp.resolve("adapter").toString();
      model.saveAdapter(saved, STORAGE);
      JsonNode config = Json.MAPPER.readTree(Path.of(saved, CausalLM.ADAPTER_CONFIG).toFile());
      assertEquals("SEQ_CLS", config.get("task_type").asText());
      assertEquals(List.of("classifier", "score"), Json.MAPPER.convertValue(config.get("modules_to_save"), List.class));
      try (CausalLM again = CausalLM.load(golden("llama_pad1"), STORAGE, Device.cpu())) {
        again.loadAdapter(saved, STORAGE);
        assertArrayEquals(scores, RewardModelTest.scores(again, rows), 0f);
        assertEquals(model.trainableParameters().keySet(), again.trainableParameters().keySet());
      }
    }
  }

  @Test
  void freshAdaptersLeaveTheScoresAndTrainOnlyThemselvesAndTheScoreHead() {
    int[][] rows = {{5, 9, 12, 7, 30, 2}, {4, 8, 15, 1, 1, 1}};
    try (CausalLM model = CausalLM.load(golden("llama_pad1"), STORAGE, Device.cpu())) {
      float[] before = RewardModelTest.scores(model, rows);
      model.addLora(new PeftSettings("lora", 4, 8, 0, List.of("q_proj", "v_proj"), null), 3);
      assertArrayEquals(before, RewardModelTest.scores(model, rows), 0f, "lora_B starts at zero, the score copy equal");
      Map<String, Parameter> trainable = model.trainableParameters();
      assertTrue(trainable.containsKey("base_model.model.score.weight"), trainable.keySet().toString());
      assertEquals(1 + 2 * 2 * 2, trainable.size(), "score + lora_A/lora_B of q_proj and v_proj in 2 layers");
      try (NDManager m = NDManager.newBaseManager();
          GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        NDArray ids = m.create(new int[] {5, 9, 12, 7, 30, 2, 4, 8, 15, 1, 1, 1}, new Shape(2, 6));
        gc.backward(model.scores(ids, true).sum());
      }
      for (Map.Entry<String, Parameter> e : trainable.entrySet()) {
        try (NDArray grad = e.getValue().getArray().getGradient()) {
          double norm = grad.abs().sum().getFloat();
          if (e.getKey().endsWith("lora_A.weight")) {
            assertEquals(0.0, norm, 0.0, e.getKey() + ": B = 0 passes no gradient to A yet");
          } else {
            assertTrue(norm > 0, e.getKey() + " takes a gradient");
          }
        }
      }
      assertFalse(model.parameters().get("score.weight").getArray().hasGradient(), "the base score head is frozen");
    }
  }

  @Test
  void adaptersOfTheOtherTaskAndAnLmHeadToSaveAreRefusedNamingTheField() throws Exception {
    String causal = tmp.resolve("causal").toString();
    try (CausalLM m = CausalLM.create(ModelConfig.llama(32, 16, 32, 2, 4, 2, false), Device.cpu(), 3)) {
      m.save(causal, STORAGE, DataType.FLOAT32);
    }
    try (CausalLM lm = CausalLM.load(causal, STORAGE, Device.cpu())) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> lm.loadAdapter(golden("llama_pad1_lora"), STORAGE));
      assertTrue(e.getMessage().contains("adapter_config.json: task_type SEQ_CLS"), e.getMessage());
      String causalAdapter = tmp.resolve("causal-adapter").toString();
      lm.addLora(new PeftSettings("lora", 2, 4, 0, List.of("q_proj"), null), 1);
      lm.saveAdapter(causalAdapter, STORAGE);
      try (CausalLM rm = CausalLM.load(golden("llama_pad1"), STORAGE, Device.cpu())) {
        IllegalArgumentException wrongTask = assertThrows(IllegalArgumentException.class,
            () -> rm.loadAdapter(causalAdapter, STORAGE));
        assertTrue(wrongTask.getMessage().contains("task_type CAUSAL_LM"), wrongTask.getMessage());
        IllegalArgumentException head = assertThrows(IllegalArgumentException.class, () -> rm.addLora(
            new PeftSettings("lora", 2, 4, 0, List.of("q_proj"), List.of("lm_head")), 1));
        assertTrue(head.getMessage().contains("lm_head cannot be saved whole on a reward model"), head.getMessage());
      }
    }
    assertNotEquals(0, Files.size(Path.of(golden("llama_pad1_lora"), CausalLM.ADAPTER_WEIGHTS)));
  }

  /**
   * Java-saved SEQ_CLS adapters (moved off their starting values) with the bases they adapt and the Java scores, for
   * {@code /usr/bin/python3 tools/golden/reward_golden.py verify-lora}: PEFT's config and keys checked, the scores
   * recomputed independently. Here: each folder reloads to the same scores.
   */
  @Test
  void writesJavaSeqClsAdapterFoldersForThePythonVerifier() throws Exception {
    Path root = Path.of(System.getProperty("project.basedir", "."), "target", "reward-java-lora");
    STORAGE.delete(root.toString());
    int[][] rows = RewardModelTest.rows(Json.MAPPER.readTree(Path.of(golden("llama_pad1"), "golden.json").toFile())
        .get("rows"));
    for (String name : List.of("llama_pad1", "qwen2_pad_is_eos")) {
      Path out = root.resolve(name);
      Files.createDirectories(out.resolve("base"));
      for (String f : List.of("config.json", "model.safetensors")) {
        Files.copy(Path.of(golden(name), f), out.resolve("base").resolve(f));
      }
      int[][] caseRows = name.equals("llama_pad1") ? rows
          : RewardModelTest.rows(Json.MAPPER.readTree(Path.of(golden(name), "golden.json").toFile()).get("rows"));
      float[] scores;
      try (CausalLM model = CausalLM.load(golden(name), STORAGE, Device.cpu())) {
        if (name.equals("llama_pad1")) {
          model.loadAdapter(golden("llama_pad1_lora"), STORAGE);
        } else {
          model.addLora(new PeftSettings("lora", 3, 5, 0, List.of("k_proj", "o_proj"), List.of("embed_tokens")), 4);
        }
        LoraTest.perturbAdapters(model, 0.05f);
        model.saveAdapter(out.resolve("adapter").toString(), STORAGE);
        scores = RewardModelTest.scores(model, caseRows);
      }
      var java = Json.MAPPER.createObjectNode();
      java.set("rows", Json.MAPPER.valueToTree(caseRows));
      java.set("scores", Json.MAPPER.valueToTree(scores));
      Files.writeString(out.resolve("java-scores.json"), java.toPrettyString());
      try (CausalLM again = CausalLM.load(out.resolve("base").toString(), STORAGE, Device.cpu())) {
        again.loadAdapter(out.resolve("adapter").toString(), STORAGE);
        assertArrayEquals(scores, RewardModelTest.scores(again, caseRows), 0f, name);
      }
    }
  }
}
