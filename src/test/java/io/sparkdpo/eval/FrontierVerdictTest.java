package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The RLHF-vs-DPO verdict: each PPO point against the best DPO point with no more KL, by hand-computed intervals. */
class FrontierVerdictTest {
  /** t(0.975, 4 degrees of freedom). */
  private static final double T4 = 2.7764451051977987;

  private final Map<String, double[]> perPrompt = new HashMap<>();

  private FrontierPoint point(String method, String series, long step, double kl, double... rewards) {
    MeanWithInterval r = MeanWithInterval.of(rewards, 0.95);
    FrontierPoint p = new FrontierPoint(method, series, 0.1, step, true, r, null, kl, kl - 0.1, kl + 0.1, false);
    perPrompt.put(p.key(), rewards);
    return p;
  }

  private FrontierPoint d1() {
    return point(FrontierPoint.DPO, "DPO β=0.5", 100, 1.0, 0.3, 0.4, 0.5, 0.6, 0.7);
  }

  private FrontierPoint d2() {
    return point(FrontierPoint.DPO, "DPO β=0.1", 100, 3.0, 0.6, 0.7, 0.8, 0.9, 1.0);
  }

  /** KL 1.5: only d1 (KL 1.0) is at no more KL; paired differences 0.2, 0.15, 0.2, 0.25, 0.2. */
  private FrontierPoint behindD1() {
    return point(FrontierPoint.PPO, "PPO kl_coef=0.05", 10, 1.5, 0.1, 0.25, 0.3, 0.35, 0.5);
  }

  @Test
  void comparesEachPpoPointWithTheBestDpoPointAtNoMoreKlPairedOverPrompts() {
    FrontierPoint d1 = d1();
    FrontierPoint d2 = d2();
    FrontierPoint p1 = behindD1();
    FrontierPoint p2 = point(FrontierPoint.PPO, "PPO kl_coef=0.2", 10, 0.5, 0, 0.1, 0.2, 0.3, 0.4);
    // KL 4: both DPO points qualify, d2 has the higher reward; differences -0.1, -0.2, 0, 0.05, 0.25 (mean 0).
    FrontierPoint p3 = point(FrontierPoint.PPO, "PPO kl_coef=0.01", 10, 4.0, 0.7, 0.9, 0.8, 0.85, 0.75);
    FrontierPoint sft = FrontierPoint.sft(MeanWithInterval.of(new double[] {0, 0.1, 0.2, 0.1, 0}, 0.95));
    FrontierVerdict v = FrontierVerdict.of(List.of(sft, d1, d2, p1, p2, p3), perPrompt, 0.95);

    // Sorted by the PPO point's KL.
    assertEquals(3, v.comparisons().size());
    FrontierVerdict.Comparison uncovered = v.comparisons().get(0);
    assertEquals(p2, uncovered.ppo());
    assertNull(uncovered.dpo());
    assertEquals(FrontierVerdict.Outcome.NO_DPO_POINT, uncovered.outcome());

    FrontierVerdict.Comparison ahead = v.comparisons().get(1);
    assertEquals(d1, ahead.dpo());
    assertTrue(ahead.paired());
    double se = Math.sqrt(0.005 / 4 / 5); // sum of squared deviations 0.005, n - 1 = 4, n = 5
    assertEquals(0.2, ahead.difference().mean(), 1e-12);
    assertEquals(0.2 - T4 * se, ahead.difference().low(), 1e-9);
    assertEquals(0.2 + T4 * se, ahead.difference().high(), 1e-9);
    assertEquals(FrontierVerdict.Outcome.DPO_AHEAD, ahead.outcome());

    FrontierVerdict.Comparison even = v.comparisons().get(2);
    assertEquals(d2, even.dpo());
    assertEquals(0.0, even.difference().mean(), 1e-12);
    double seEven = Math.sqrt((0.01 + 0.04 + 0 + 0.0025 + 0.0625) / 4 / 5);
    assertEquals(T4 * seEven, even.difference().high(), 1e-9);
    assertEquals(FrontierVerdict.Outcome.NOT_DISTINGUISHABLE, even.outcome());

    assertEquals(FrontierVerdict.Overall.NOT_DISTINGUISHABLE, v.overall());
    assertTrue(v.text().startsWith("Not distinguishable: DPO's frontier is not shown to dominate PPO's, nor PPO's "
        + "DPO's, with these samples (1 of 3 PPO points with DPO ahead, 1 with overlapping intervals, 1 with no DPO "
        + "point at so little KL)."), v.text());
  }

  @Test
  void dominatesOnlyWhenDpoIsAheadAtEveryPpoPoint() {
    FrontierVerdict v = FrontierVerdict.of(List.of(d1(), d2(), behindD1()), perPrompt, 0.95);
    assertEquals(FrontierVerdict.Overall.DPO_DOMINATES, v.overall());
    assertTrue(v.text().startsWith("DPO's frontier dominates PPO's: at each of the 1 PPO point a DPO policy with no "
        + "more KL has a higher mean reward (95% CI of the difference above 0; closest: PPO kl_coef=0.05, step 10 at "
        + "KL 1.500 vs DPO β=0.5, step 100 at KL 1.000: DPO − PPO +0.2000 ["), v.text());
  }

  @Test
  void anyPpoPointAheadOfEveryDpoPointAtNoMoreKlMeansNoDominance() {
    // KL 2: only d1 qualifies; PPO is 0.3 higher on every prompt but one.
    FrontierPoint ahead = point(FrontierPoint.PPO, "PPO kl_coef=0.05", 20, 2.0, 0.6, 0.7, 0.8, 0.9, 1.1);
    FrontierVerdict v = FrontierVerdict.of(List.of(d1(), d2(), behindD1(), ahead), perPrompt, 0.95);
    assertEquals(FrontierVerdict.Outcome.PPO_AHEAD, v.comparisons().get(1).outcome());
    assertEquals(-0.32, v.comparisons().get(1).difference().mean(), 1e-12);
    assertEquals(FrontierVerdict.Overall.DPO_DOES_NOT_DOMINATE, v.overall());
    assertTrue(v.text().startsWith("DPO's frontier does not dominate PPO's: at 1 of 2 PPO points every DPO policy "
        + "with no more KL has a lower mean reward"), v.text());
  }

  @Test
  void withoutPerPromptRewardsTheDifferenceIsWelchs() {
    FrontierPoint d1 = d1();
    FrontierPoint p1 = behindD1();
    FrontierVerdict v = FrontierVerdict.of(List.of(d1, p1), Map.of(), 0.95);
    FrontierVerdict.Comparison c = v.comparisons().get(0);
    assertFalse(c.paired());
    double va = 0.1 / 4 / 5; // d1: squared deviations sum to 0.1
    double vb = 0.085 / 4 / 5; // p1: 0.085
    double df = (va + vb) * (va + vb) / (va * va / 4 + vb * vb / 4);
    assertEquals(7.947750362844702, df, 1e-9);
    double half = Quantiles.studentT(0.975, df) * Math.sqrt(va + vb);
    assertEquals(0.2 - half, c.difference().low(), 1e-9);
    assertEquals(0.2 + half, c.difference().high(), 1e-9);
    // Unpaired, the same points' difference is no longer clear of zero: pairing is what separates them.
    assertEquals(FrontierVerdict.Outcome.NOT_DISTINGUISHABLE, c.outcome());
  }

  @Test
  void noVerdictWithoutBothMethods() {
    FrontierVerdict v = FrontierVerdict.of(List.of(d1()), perPrompt, 0.95);
    assertEquals(FrontierVerdict.Overall.NOTHING_TO_COMPARE, v.overall());
    assertEquals("no verdict: the frontier needs DPO and PPO points (1 DPO, 0 PPO)", v.text());
  }
}
