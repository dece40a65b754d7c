package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class PipelineSettingsTest {
  @Test
  void defaultsRunEveryStageOnTheSampleCorpusAtTwoBetas() {
    PipelineSettings p = ConfigLoader.defaults().pipeline();
    assertEquals(new PipelineSettings("runs/pipeline", List.of("sample-data/corpus/moby-dick/train"),
        List.of("sample-data/corpus/moby-dick/heldout"), List.of(0.1, 0.5), PipelineSettings.STAGES, "float32", null), p);
    assertTrue(p.runs("export"));
  }

  @Test
  void theLocalJobYamlSetsTheTunedExperiment() {
    JobConfig cfg = ConfigLoader.load(Path.of(System.getProperty("project.basedir", ".")).resolve("conf/local.yaml"),
        List.of());
    assertEquals(List.of(0.1, 0.5), cfg.pipeline().betas());
    assertEquals(1.0e-4, cfg.train().learningRate());
    assertEquals(TrainSettings.ReferenceMode.PRECOMPUTED, cfg.train().referenceMode());
    assertEquals(128, cfg.sft().blockSize());
  }

  @Test
  void stagesCanBeChosen() {
    PipelineSettings p = ConfigLoader.load(null, List.of("pipeline.stages=[evaluate, export]")).pipeline();
    assertFalse(p.runs("sft"));
    assertTrue(p.runs("evaluate"));
  }

  @Test
  void badValuesAreAllReportedByKey() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of(
        "pipeline.betas=[0.1, 0.1]", "pipeline.stages=[sft, deploy]", "pipeline.text=[]", "pipeline.eval_text=[]",
        "pipeline.export_dtype=f16", "pipeline.output_dir=''")));
    assertEquals(6, e.problems().size(), e.getMessage());
    assertTrue(e.getMessage().contains("pipeline.betas: must be distinct numbers > 0 (got [0.1, 0.1])"),
        e.getMessage());
    assertTrue(e.getMessage().contains("pipeline.stages: must be a non-empty subset of [sft, generate, prepare, "
        + "reference, train, evaluate, export] (got [sft, deploy])"), e.getMessage());
  }
}
