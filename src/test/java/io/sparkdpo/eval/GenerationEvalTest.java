package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class GenerationEvalTest {
  static final double TOL = 1e-12;
  static final GenerationEval.Sampling SAMPLING = new GenerationEval.Sampling(3, 2, 48, 1.0, 0, 1.0, 2024);
  // Per-prompt means: 0.2, 0.0, 0.3.
  static final double[][] SFT = {{0.1, 0.3}, {0.0, 0.0}, {0.2, 0.4}};
  // Per-prompt means 0.4, 0.0, 0.2: a win, a tie and a loss against SFT.
  static final double[][] POLICY_EVEN = {{0.5, 0.3}, {0.0, 0.0}, {0.1, 0.3}};
  // Per-prompt means 0.6, 0.4, 0.6: wins everywhere.
  static final double[][] POLICY_BETTER = {{0.6, 0.6}, {0.3, 0.5}, {0.5, 0.7}};
  // Six sampled sequences (3 prompts x 2 samples); log-ratio sums 1.0, 0.5, 0.5, 0.2, 0.6, 0.2 over 10 tokens.
  static final double[][] LOGP_POLICY = {{-1, -1}, {-2}, {-0.5, -0.5, -0.5}, {-1}, {-1, -2}, {-0.1}};
  static final double[][] LOGP_SFT = {{-1.5, -1.5}, {-2.5}, {-0.5, -0.5, -1.0}, {-1.2}, {-1, -2.6}, {-0.3}};
  static final double[][] LOGP_ONE = {{-0.1}, {-0.1}, {-0.1}, {-0.1}, {-0.1}, {-0.1}};
  static final double[][] LOGP_ONE_SFT = {{-1.1}, {-1.1}, {-1.1}, {-1.1}, {-1.1}, {-1.1}};

  static GenerationEval twoRuns() {
    return GenerationEval.builder("afinn-111", SAMPLING, 0.95, SFT)
        .addPolicy("β=0.1", 0.1, 100, POLICY_EVEN, LOGP_POLICY, LOGP_SFT)
        .addPolicy("β=0.5", 0.5, 100, POLICY_EVEN, LOGP_POLICY, LOGP_SFT)
        .addPolicy("β=0.5", 0.5, 200, POLICY_BETTER, LOGP_ONE, LOGP_ONE_SFT)
        .addExample(new GenerationEval.Example("Call me", " sad <sea>", -0.2, "β=0.5", " happy & good", 0.6))
        .build();
  }

  @Test
  void measuresRewardImprovementWinRateAndKlAgainstTheSameSftSamples() {
    GenerationEval gen = twoRuns();
    assertEquals(1.0 / 6, gen.sftReward().mean(), TOL);
    assertEquals(-0.21279163669300946, gen.sftReward().low(), TOL);
    PolicyEval even = gen.policies().get(0);
    assertEquals(0.2, even.reward().mean(), TOL);
    assertEquals(-0.29682754235006614, even.reward().low(), TOL);
    assertEquals(1.0 / 30, even.improvement().mean(), TOL);
    assertEquals(-0.3461249700263428, even.improvement().low(), TOL);
    assertEquals(0.41279163669300944, even.improvement().high(), TOL);
    assertEquals(0.5, even.winRate().rate(), TOL);
    assertEquals(List.of(1, 1, 1), List.of(even.winRate().wins(), even.winRate().ties(), even.winRate().losses()));
    assertEquals(0.3, even.kl().perToken(), TOL);
    assertEquals(0.5, even.kl().perSequence().mean(), TOL);
    assertEquals(10, even.kl().tokens());
    PolicyEval better = gen.policies().get(2);
    assertEquals(0.3666666666666667, better.improvement().mean(), TOL);
    assertEquals(0.22324490900835117, better.improvement().low(), TOL);
    assertEquals(1.0, better.kl().perToken(), TOL);
  }

  @Test
  void verdictLinesAreComputedFromTheIntervalOfTheImprovement() {
    GenerationEval gen = twoRuns();
    assertEquals(new Verdict(Verdict.Outcome.NO_CLEAR_DIFFERENCE, "no clear difference from SFT: mean reward "
        + "+0.0333 (95% CI [-0.3461, 0.4128]) at KL 0.3000 nats/token (0.5000 nats/continuation); β=0.1, "
        + "step 100, win rate 50.0%"), gen.policies().get(0).verdict());
    assertEquals(new Verdict(Verdict.Outcome.BEATS_SFT, "policy beats SFT: mean reward +0.3667 (95% CI "
        + "[0.2232, 0.5101]) at KL 1.000 nats/token (1.000 nats/continuation); β=0.5, step 200, win rate 100.0%"),
        gen.policies().get(2).verdict());
    // Swap roles: the same numbers with the sign flipped make the policy worse.
    PolicyEval worse = PolicyEval.measure("β=1", 1, 5, SFT, POLICY_BETTER, LOGP_ONE, LOGP_ONE_SFT, 0.95);
    assertEquals(Verdict.Outcome.WORSE_THAN_SFT, worse.verdict().outcome());
    assertTrue(worse.verdict().text().startsWith("policy is worse than SFT: mean reward -0.3667 (95% CI "
        + "[-0.5101, -0.2232])"), worse.verdict().text());
  }

  @Test
  void headlineIsTheLastCheckpointWithTheLargestImprovement() {
    GenerationEval gen = twoRuns();
    assertEquals(List.of(100L, 200L), gen.finalCheckpoints().stream().map(PolicyEval::step).toList());
    assertEquals("β=0.5", gen.headline().orElseThrow().label());
    assertEquals(200, gen.headline().orElseThrow().step());
  }

  @Test
  void roundTripsThroughJson() {
    GenerationEval gen = twoRuns();
    String json = gen.toJson();
    assertTrue(json.contains("\"sft_reward\"") && json.contains("\"samples_per_prompt\" : 2")
        && json.contains("\"per_token\" : 0.3"), json);
    GenerationEval back = GenerationEval.fromJson(json, "generation.json");
    assertEquals(gen, back);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> GenerationEval.fromJson("{\"reward\": [1]}", "bad.json"));
    assertTrue(e.getMessage().startsWith("bad.json: not a generation evaluation"), e.getMessage());
  }

  @Test
  void promptCountsMustAgree() {
    assertThrows(IllegalArgumentException.class, () -> GenerationEval.builder("r",
        new GenerationEval.Sampling(4, 2, 48, 1.0, 0, 1.0, 1), 0.95, SFT));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GenerationEval.builder("r",
        SAMPLING, 0.95, SFT).addPolicy("b", 0.1, 1, new double[][] {{1}, {2}}, LOGP_POLICY, LOGP_SFT));
    assertTrue(e.getMessage().contains("same prompts"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> GenerationEval.builder("r", SAMPLING, 0.95, SFT)
        .addPolicy("b", 0.1, 1, new double[][] {{1}, {}, {2}}, LOGP_POLICY, LOGP_SFT));
    assertEquals("b policy: prompt 1 has no samples", e.getMessage());
  }
}
