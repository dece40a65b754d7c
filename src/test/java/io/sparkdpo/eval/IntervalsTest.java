package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** MeanWithInterval and WinRate against golden values and hand-computed numbers. */
class IntervalsTest {
  private static final double TOL = 1e-12;
  private final JsonNode golden = GoldenStats.load();

  @Test
  void meanIntervalOfOneToFiveIsThreePlusMinusTTimesStandardError() {
    // s = sqrt(2.5), se = sqrt(0.5), t(0.975, 4) = 2.7764451051977934
    MeanWithInterval m = MeanWithInterval.of(new double[] {1, 2, 3, 4, 5}, 0.95);
    assertEquals(3.0, m.mean(), TOL);
    assertEquals(Math.sqrt(0.5), m.standardError(), TOL);
    assertEquals(3 - 2.7764451051977934 * Math.sqrt(0.5), m.low(), TOL);
    assertEquals(3 + 2.7764451051977934 * Math.sqrt(0.5), m.high(), TOL);
    assertEquals(5, m.n());
    assertEquals(0.95, m.confidence());
  }

  @Test
  void meanIntervalsMatchGoldenValues() {
    for (JsonNode g : golden.get("mean_intervals")) {
      MeanWithInterval m = MeanWithInterval.of(GoldenStats.doubles(g.get("values")), g.get("confidence").asDouble());
      assertEquals(g.get("mean").asDouble(), m.mean(), TOL);
      assertEquals(g.get("low").asDouble(), m.low(), TOL);
      assertEquals(g.get("high").asDouble(), m.high(), TOL);
      assertEquals(g.get("standard_error").asDouble(), m.standardError(), TOL);
    }
  }

  @Test
  void pairedDifferenceIntervalIsTheIntervalOfTheDifferences() {
    JsonNode p = golden.get("paired");
    MeanWithInterval d = MeanWithInterval.ofPairedDifferences(GoldenStats.doubles(p.get("policy")),
        GoldenStats.doubles(p.get("sft")), 0.95);
    JsonNode g = golden.get("mean_intervals").get(3);
    assertEquals(0.0775, d.mean(), TOL);
    assertEquals(g.get("low").asDouble(), d.low(), TOL);
    assertEquals(g.get("high").asDouble(), d.high(), TOL);
    assertTrue(d.excludesZeroAbove(), d.toString());
    assertFalse(d.excludesZeroBelow());
  }

  @Test
  void lowerConfidenceGivesANarrowerInterval() {
    double[] xs = GoldenStats.doubles(golden.get("paired").get("policy"));
    assertTrue(MeanWithInterval.of(xs, 0.9).halfWidth() < MeanWithInterval.of(xs, 0.95).halfWidth());
  }

  @Test
  void meanIntervalRejectsFewerThanTwoValuesNonFiniteValuesAndUnequalPairs() {
    assertThrows(IllegalArgumentException.class, () -> MeanWithInterval.of(new double[] {1}, 0.95));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MeanWithInterval.of(new double[] {1, Double.NaN, 2}, 0.95));
    assertTrue(e.getMessage().contains("value 1"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> MeanWithInterval.of(new double[] {1, 2}, 1.0));
    assertThrows(IllegalArgumentException.class,
        () -> MeanWithInterval.ofPairedDifferences(new double[] {1, 2}, new double[] {1, 2, 3}, 0.95));
  }

  @Test
  void winRateCountsWinsTiesAndLossesPerPromptWithTiesAsHalf() {
    double[] policy = {0.3, 0.2, 0.0, 0.5, 0.1, 0.4, 0.0, 0.6};
    double[] sft = {0.1, 0.3, 0.0, 0.2, 0.0, 0.1, 0.0, 0.2};
    WinRate w = WinRate.of(policy, sft, 0.95);
    assertEquals(5, w.wins());
    assertEquals(2, w.ties());
    assertEquals(1, w.losses());
    assertEquals(8, w.n());
    assertEquals(0.75, w.rate(), TOL);
    JsonNode g = golden.get("wilson").get(0);
    assertEquals(g.get("low").asDouble(), w.low(), TOL);
    assertEquals(g.get("high").asDouble(), w.high(), TOL);
  }

  @Test
  void wilsonIntervalsMatchGoldenValuesAndStayInsideTheUnitInterval() {
    for (JsonNode g : golden.get("wilson")) {
      int wins = g.get("wins").asInt();
      int ties = g.get("ties").asInt();
      int losses = g.get("losses").asInt();
      double[] policy = new double[wins + ties + losses];
      double[] sft = new double[policy.length];
      for (int i = 0; i < policy.length; i++) {
        policy[i] = i < wins ? 1 : i < wins + ties ? 0 : -1;
      }
      WinRate w = WinRate.of(policy, sft, g.get("confidence").asDouble());
      assertEquals(g.get("rate").asDouble(), w.rate(), TOL);
      assertEquals(g.get("low").asDouble(), w.low(), TOL, g.toString());
      assertEquals(g.get("high").asDouble(), w.high(), TOL, g.toString());
      assertTrue(w.low() >= 0 && w.high() <= 1);
    }
  }

  @Test
  void winRateRejectsUnequalLengthsAndNonFiniteRewardsNamingThePrompt() {
    assertThrows(IllegalArgumentException.class, () -> WinRate.of(new double[] {1}, new double[] {1, 2}, 0.95));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> WinRate.of(new double[] {1, Double.NaN}, new double[] {1, 2}, 0.95));
    assertTrue(e.getMessage().contains("prompt 1"), e.getMessage());
  }
}
