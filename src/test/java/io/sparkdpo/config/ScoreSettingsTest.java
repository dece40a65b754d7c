package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ScoreSettingsTest {
  @Test
  void defaultsScoreWithTheGroundTruthAsOracleAndEvaluateBestOf1And4And16() {
    JobConfig cfg = ConfigLoader.defaults();
    ScoreSettings s = cfg.score();
    assertNull(s.model());
    assertEquals("afinn", s.rewardOr(cfg.evaluate()));
    assertEquals(List.of(1, 4, 16), s.bestOfN());
    assertEquals(16, s.bestOfNSamples());
    assertEquals("runs/best-of-n", s.bestOfNOutputDir());
    assertEquals("lexicon:x.csv", ConfigLoader.load(null, List.of("score.reward=lexicon:x.csv")).score()
        .rewardOr(cfg.evaluate()));
  }

  @Test
  void badValuesAreReportedByKey() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of(
        "score.best_of_n=[1, 0, 4, 4]", "score.batch_tokens=0", "score.device=tpu", "score.best_of_n_output_dir=' '")));
    for (String key : List.of("score.best_of_n: every n must be >= 1", "score.best_of_n: must not repeat an n",
        "score.batch_tokens", "score.device", "score.best_of_n_output_dir")) {
      assertTrue(e.getMessage().contains(key), key + " in " + e.getMessage());
    }
    e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of("score.best_of_n=[]")));
    assertTrue(e.getMessage().contains("score.best_of_n: must list at least one n"), e.getMessage());
  }
}
