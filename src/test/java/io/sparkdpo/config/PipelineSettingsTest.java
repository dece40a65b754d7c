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
        List.of("sample-data/corpus/moby-dick/heldout"), List.of(0.1, 0.5), PipelineSettings.DPO_STAGES, "float32",
        null, List.of(0.05, 0.2), List.of(1, 4, 16), "reward_model"), p);
    assertFalse(p.runs("reward") || p.runs("ppo") || p.runs("best-of-n"), "the RLHF stages are not in the default");
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

  /** conf/rlhf-vs-dpo.yaml: conf/local.yaml's experiment plus every RLHF stage, in its own folder. */
  @Test
  void theRlhfVsDpoYamlRunsEveryStageOnTopOfTheLocalExperiment() {
    Path conf = Path.of(System.getProperty("project.basedir", ".")).resolve("conf");
    JobConfig cfg = ConfigLoader.load(conf.resolve("rlhf-vs-dpo.yaml"), List.of());
    JobConfig local = ConfigLoader.load(conf.resolve("local.yaml"), List.of());
    assertEquals(PipelineSettings.STAGES, cfg.pipeline().stages());
    assertEquals("runs/rlhf-vs-dpo", cfg.pipeline().outputDir());
    assertEquals(List.of(0.05, 0.2), cfg.pipeline().klCoefs());
    assertEquals(List.of(1, 4, 16), cfg.pipeline().bestOfN());
    assertFalse(cfg.pipeline().oracle());
    assertEquals(local.sft(), cfg.sft());
    assertEquals(local.generate(), cfg.generate());
    assertEquals(local.train(), cfg.train());
    assertEquals(local.evaluate(), cfg.evaluate());
    assertEquals(1.0, cfg.ppo().temperature(), "PPO samples pi itself, as evaluate's sampled KL assumes");
    assertEquals(local.evaluate().maxNewTokens(), cfg.ppo().responseLength());
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
        "pipeline.export_dtype=f16", "pipeline.output_dir=''", "pipeline.kl_coefs=[-0.1]",
        "pipeline.best_of_n=[0, 4]", "pipeline.rlhf_reward=human")));
    assertEquals(9, e.problems().size(), e.getMessage());
    assertTrue(e.getMessage().contains("pipeline.betas: must be distinct numbers > 0 (got [0.1, 0.1])"),
        e.getMessage());
    assertTrue(e.getMessage().contains("pipeline.stages: must be a non-empty subset of [sft, generate, prepare, "
        + "reference, reward, train, ppo, best-of-n, evaluate, export] (got [sft, deploy])"), e.getMessage());
    assertTrue(e.getMessage().contains("pipeline.kl_coefs: must be distinct numbers >= 0, at least one when stages "
        + "include ppo (got [-0.1])"), e.getMessage());
    assertTrue(e.getMessage().contains("pipeline.best_of_n: must be distinct integers >= 1, at least one when stages "
        + "include best-of-n (got [0, 4])"), e.getMessage());
  }

  @Test
  void theRlhfStagesNeedTheirSettings() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of(
        "pipeline.stages=[ppo, best-of-n, evaluate]", "pipeline.kl_coefs=[]", "pipeline.best_of_n=[]")));
    assertEquals(2, e.problems().size(), e.getMessage());
    PipelineSettings p = ConfigLoader.load(null, List.of("pipeline.stages=[reward, ppo, best-of-n]",
        "pipeline.rlhf_reward=oracle")).pipeline();
    assertTrue(p.runs("ppo") && p.runs("best-of-n") && p.oracle());
  }
}
