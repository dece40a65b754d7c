package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class EvaluateSettingsTest {
  @Test
  void defaultsSampleFromTheModelItselfWithTheAfinnReward() {
    EvaluateSettings e = ConfigLoader.defaults().evaluate();
    assertEquals(new EvaluateSettings("afinn", 200, 4, 48, 1.0, 0, 1.0, 2024, 0.95, false), e);
  }

  @Test
  void overridesBindEveryKey() {
    EvaluateSettings e = ConfigLoader.load(null, List.of("evaluate.reward=lexicon:s3a://bucket/words.csv",
        "evaluate.num_prompts=50", "evaluate.samples_per_prompt=8", "evaluate.max_new_tokens=32",
        "evaluate.temperature=0.7", "evaluate.top_k=40", "evaluate.top_p=0.9", "evaluate.seed=7",
        "evaluate.confidence_level=0.9", "evaluate.checkpoints=true")).evaluate();
    assertEquals(new EvaluateSettings("lexicon:s3a://bucket/words.csv", 50, 8, 32, 0.7, 40, 0.9, 7, 0.9, true), e);
    assertEquals("com.example.MyReward",
        ConfigLoader.load(null, List.of("evaluate.reward=com.example.MyReward")).evaluate().reward());
  }

  @Test
  void outOfRangeValuesAreAllReportedByKey() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of(
        "evaluate.reward=vader", "evaluate.num_prompts=1", "evaluate.samples_per_prompt=0",
        "evaluate.max_new_tokens=-1", "evaluate.temperature=0", "evaluate.top_k=-3", "evaluate.top_p=0",
        "evaluate.confidence_level=1")));
    assertEquals(8, e.problems().size(), e.getMessage());
    assertTrue(e.getMessage().contains("evaluate.reward: must be afinn, lexicon:PATH or a fully-qualified class "
        + "name implementing io.sparkdpo.eval.RewardFunction (got vader)"), e.getMessage());
    assertTrue(e.getMessage().contains("evaluate.num_prompts: must be >= 2 (got 1)"), e.getMessage());
    assertTrue(e.getMessage().contains("evaluate.samples_per_prompt: must be > 0 (got 0)"), e.getMessage());
    assertTrue(e.getMessage().contains("evaluate.max_new_tokens: must be > 0 (got -1)"), e.getMessage());
    assertTrue(e.getMessage().contains("evaluate.temperature: must be a finite number > 0 (got 0.0)"),
        e.getMessage());
    assertTrue(e.getMessage().contains("evaluate.top_k: must be >= 0 (got -3)"), e.getMessage());
    assertTrue(e.getMessage().contains("evaluate.top_p: must be in (0.0, 1.0] (got 0.0)"), e.getMessage());
    assertTrue(e.getMessage().contains("evaluate.confidence_level: must be in (0.0, 1.0) (got 1.0)"),
        e.getMessage());
  }

  @Test
  void unknownEvaluateKeyIsRejectedWithASuggestion() {
    ConfigException e = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("evaluate.num_prompt=10")));
    assertTrue(e.getMessage().contains("did you mean 'num_prompts'"), e.getMessage());
  }
}
