package io.sparkdpo.distributed;

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

  /** A run folder written before peft and model.adapter existed resumes: an absent key is unset (null). */
  @Test
  void aRunJsonWithoutThePeftKeysIsTheSameRunAsOneWithThemNull() throws java.io.IOException {
    JobConfig cfg = TrainingFixtures.config("model.path=" + model);
    SessionSpec spec = SessionSpec.dpo(cfg.model(), cfg.train(), model, 3, 8);
    String run = tmp.resolve("older-run").toString();
    TrainingStage.requireSameRun(Storage.local(), run, spec, "data-fp", 1, false);
    Path file = Path.of(run, TrainingStage.RUN_FILE);
    com.fasterxml.jackson.databind.node.ObjectNode written = (com.fasterxml.jackson.databind.node.ObjectNode)
        io.sparkdpo.io.Json.MAPPER.readTree(file.toFile());
    ((com.fasterxml.jackson.databind.node.ObjectNode) written.path("spec").path("model")).remove("adapter");
    ((com.fasterxml.jackson.databind.node.ObjectNode) written.path("spec").path("dpo")).remove("peft");
    Files.write(file, io.sparkdpo.io.Json.MAPPER.writeValueAsBytes(written));
    TrainingStage.requireSameRun(Storage.local(), run, spec, "data-fp", 1, false);
    SessionSpec lora = SessionSpec.dpo(cfg.model(), TrainingFixtures.config("model.path=" + model,
        "train.peft.type=lora").train(), model, 3, 8);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TrainingStage.requireSameRun(Storage.local(), run, lora, "data-fp", 1, false));
    assertTrue(e.getMessage().contains("spec.dpo.peft"), e.getMessage());
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
  void mixedPrecisionOnABfloat16LoraBaseIsRefused() {
    IllegalArgumentException e = refused("train.peft.type=lora", "model.dtype=bfloat16", "train.mixed_precision=bf16");
    assertTrue(e.getMessage().startsWith("train.mixed_precision is bf16, but the LoRA base is held in"),
        e.getMessage());
  }

  @Test
  void anotherReferenceModelIsRefusedWithPeft() {
    IllegalArgumentException e = refused("train.peft.type=lora", "reference.model=builtin:tiny");
    assertTrue(e.getMessage().startsWith("reference.model is builtin:tiny, but with train.peft the reference is the "
        + "policy's base with its adapters off"), e.getMessage());
  }
}
