package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EvalSplitMetricsTest {
  // Pair 1: chosen reward 0.1 * (-10 - -11) = 0.1, rejected 0.1 * (-12 - -11) = -0.1, margin 0.2.
  // Pair 2: policy = reference: rewards 0, margin 0, not counted as ranked (TRL's strict comparison).
  private static final double[] POLICY_CHOSEN = {-10, -5};
  private static final double[] POLICY_REJECTED = {-12, -5};
  private static final double[] REF_CHOSEN = {-11, -5};
  private static final double[] REF_REJECTED = {-11, -5};

  @Test
  void measuresRewardsMarginsStrictAccuracyAndTheSigmoidLoss() {
    EvalSplitMetrics m = EvalSplitMetrics.of(0.1, 0.0, true, POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN,
        REF_REJECTED);
    assertEquals(2, m.pairs());
    // (log(1 + e^-0.2) + ln 2) / 2, computed with Python's math.log1p.
    assertEquals(0.6456430249707685, m.loss(), 1e-12);
    assertEquals(0.5, m.accuracy());
    assertEquals(0.1, m.margin(), 1e-12);
    assertEquals(0.05, m.chosenReward(), 1e-12);
    assertEquals(-0.05, m.rejectedReward(), 1e-12);
  }

  @Test
  void labelSmoothingMixesInTheLossOfTheFlippedPreference() {
    EvalSplitMetrics m = EvalSplitMetrics.of(0.1, 0.1, true, POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN,
        REF_REJECTED);
    // (0.9 log(1 + e^-0.2) + 0.1 log(1 + e^0.2) + ln 2) / 2
    assertEquals(0.6556430249707685, m.loss(), 1e-12);
  }

  @Test
  void otherLossTypesReportNoLossButTheSameRewards() {
    EvalSplitMetrics m = EvalSplitMetrics.of(0.1, 0.0, false, POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN,
        REF_REJECTED);
    assertTrue(Double.isNaN(m.loss()));
    assertEquals(null, m.toMap().get("eval/loss"));
    assertEquals(0.5, m.toMap().get("eval/rewards/accuracies"));
  }

  @Test
  void softplusDoesNotOverflow() {
    assertEquals(1000.0, EvalSplitMetrics.softplus(1000), 1e-12);
    assertEquals(0.0, EvalSplitMetrics.softplus(-1000), 1e-300);
  }

  @Test
  void refusesMismatchedOrEmptyInputs() {
    assertThrows(IllegalArgumentException.class,
        () -> EvalSplitMetrics.of(0.1, 0, true, new double[1], new double[2], new double[1], new double[1]));
    assertThrows(IllegalArgumentException.class,
        () -> EvalSplitMetrics.of(0.1, 0, true, new double[0], new double[0], new double[0], new double[0]));
  }
}
