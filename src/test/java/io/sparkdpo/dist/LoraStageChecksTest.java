package io.sparkdpo.dist;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.testing.SharedSpark;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.TrainingFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LoRA settings that cannot work together fail on the driver, naming the keys, before any Spark job. */
class LoraStageChecksTest {
  @TempDir
  static Path tmp;
  static String model;
  static String data;
  static String adapter;

  @BeforeAll
  static void inputs() {
    model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 5);
    data = TrainingFixtures.writePrepared(tmp.resolve("data"),
        List.of(TrainingFixtures.pairs("t", 8, TrainingFixtures.SMALL.vocabSize(), 1)),
        TrainingFixtures.pairs("e", 2, TrainingFixtures.SMALL.vocabSize(), 2), null);
    adapter = tmp.resolve("adapter").toString();
    try (CausalLM m = CausalLM.load(model, Storage.local(), CausalLM.device("cpu"))) {
      m.addLora(new PeftSettings("lora", 4, 8, 0.0, List.of("q_proj", "v_proj"), null), 1);
      m.saveAdapter(adapter, Storage.local());
    }
  }

  private static IllegalArgumentException refused(String... overrides) {
    List<String> o = new ArrayList<>(List.of("model.path=" + model, "train.reference_mode=in_loop",
        "train.output_dir=" + tmp.resolve("run")));
    o.addAll(List.of(overrides));
    JobConfig cfg = TrainingFixtures.config(o.toArray(String[]::new));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new TrainingStage(
        SharedSpark.get(), cfg, SessionSpec.Stage.DPO).run(TrainingStage.Inputs.prepared(data)));
    assertTrue(Files.notExists(tmp.resolve("run").resolve("run.json")), "nothing ran");
    return e;
  }

  @Test
  void anAdapterWithoutPeftIsRefused() {
    IllegalArgumentException e = refused("model.adapter=" + adapter);
    assertTrue(e.getMessage().startsWith("model.adapter is " + adapter + ", but train.peft is off: set "
        + "train.peft.type=lora"), e.getMessage());
  }

  @Test
  void anAdapterOfAnotherShapeThanPeftSaysIsRefusedNamingEachKey() {
    IllegalArgumentException e = refused("model.adapter=" + adapter, "train.peft.type=lora", "train.peft.r=8");
    assertTrue(e.getMessage().contains("train.peft.r=8 (adapter: 4)"), e.getMessage());
    assertTrue(e.getMessage().contains("train.peft.alpha=16.0 (adapter: 8.0)"), e.getMessage());
    assertTrue(e.getMessage().contains("train.peft.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, "
        + "up_proj, down_proj] (adapter: [q_proj, v_proj])"), e.getMessage());
  }

  @Test
  void aMissingAdapterFolderIsNamed() {
    IllegalArgumentException e = refused("model.adapter=" + tmp.resolve("nowhere"), "train.peft.type=lora");
    assertTrue(e.getMessage().contains("nowhere/adapter_config.json: not found"), e.getMessage());
  }

  @Test
  void anotherReferenceModelIsRefusedWithPeft() {
    IllegalArgumentException e = refused("train.peft.type=lora", "reference.model=builtin:tiny");
    assertTrue(e.getMessage().startsWith("reference.model is builtin:tiny, but with train.peft the reference is the "
        + "policy's base with its adapters off"), e.getMessage());
  }
}
