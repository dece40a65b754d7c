package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.io.Storage;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A PEFT adapter folder seen from the driver, and what saving adapters must leave alone. */
class AdapterFolderTest {
  private static final Storage STORAGE = Storage.local();
  /** Untied, so lm_head may be saved whole. */
  private static final ModelConfig UNTIED = ModelConfig.llama(64, 16, 32, 1, 2, 2, false);
  @TempDir
  Path dir;

  private static void perturbAdapters(CausalLM m) {
    try (NoGrad ignored = NoGrad.enter()) {
      for (Parameter p : m.trainableParameters().values()) {
        NDArray a = p.getArray();
        try (NDArray r = a.getManager().randomNormal(0, 0.1f, a.getShape(), DataType.FLOAT32)) {
          a.addi(r);
        }
      }
    }
  }

  @Test
  void theDriversFingerprintAndSettingsAreWhatLoadingTheAdapterGives() {
    String folder = dir.resolve("adapter").toString();
    try (CausalLM m = CausalLM.create(UNTIED, CausalLM.device("cpu"), 1)) {
      m.addLora(new PeftSettings("lora", 2, 4, 0.1, List.of("q_proj", "v_proj"), List.of("lm_head")), 5);
      perturbAdapters(m);
      m.saveAdapter(folder, STORAGE);
    }
    PeftSettings s = AdapterFolder.settings(STORAGE, folder);
    assertEquals(2, s.r());
    assertEquals(4.0, s.alpha());
    assertEquals(0.1, s.dropout());
    assertEquals(List.of("q_proj", "v_proj"), s.targetModules());
    assertEquals(List.of("lm_head"), s.modulesToSave());
    try (CausalLM m = CausalLM.create(UNTIED, CausalLM.device("cpu"), 1)) {
      m.loadAdapter(folder, STORAGE);
      assertEquals(m.adapterFingerprint(), AdapterFolder.fingerprint(STORAGE, folder));
      String base = m.fingerprint();
      assertNotEquals(base, AdapterFolder.withBase(base, m.adapterFingerprint()));
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> AdapterFolder.fingerprint(STORAGE, dir.resolve("none").toString()));
    assertTrue(e.getMessage().contains("adapter_config.json: not found"), e.getMessage());
  }

  /** torch's to() returns the tensor itself for its own dtype: a float32 base must be copied, not aliased. */
  @Test
  void savingMergedAndCopiesToSaveLeaveAFloat32BaseUntouched() {
    try (CausalLM m = CausalLM.create(UNTIED, CausalLM.device("cpu"), 1)) {
      float[] head = m.parameters().get("lm_head.weight").getArray().toFloatArray();
      float[] q = m.parameters().get("model.layers.0.self_attn.q_proj.weight").getArray().toFloatArray();
      m.addLora(new PeftSettings("lora", 2, 4, 0.0, List.of("q_proj"), List.of("lm_head")), 5);
      perturbAdapters(m);
      List<int[]> probes = ModelExport.probes(64);
      double[] before = ModelExport.sums(m, probes);
      m.saveMerged(dir.resolve("merged").toString(), STORAGE, DataType.FLOAT32, ModelFolder.DEFAULT_MAX_SHARD_BYTES);
      assertArrayEquals(before, ModelExport.sums(m, probes), "the model computes as before saving");
      assertArrayEquals(head, m.parameters().get("lm_head.weight").getArray().toFloatArray(), 0f,
          "training lm_head's copy left the base head alone");
      assertArrayEquals(q, m.parameters().get("model.layers.0.self_attn.q_proj.weight").getArray().toFloatArray(), 0f,
          "merging left the base weight alone");
    }
  }
}
