package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.commons.math3.distribution.TDistribution;
import org.junit.jupiter.api.Test;

/** Commons Math's quantiles as Quantiles configures them, against mpmath (tools/eval/golden_stats.py). */
class QuantilesTest {
  private final JsonNode golden = GoldenStats.load();

  @Test
  void studentTQuantilesMatchMpmathToTwelveDigits() {
    int checked = 0;
    for (JsonNode g : golden.get("t_quantiles")) {
      double expected = g.get("t").asDouble();
      double actual = Quantiles.studentT(g.get("p").asDouble(), g.get("df").asDouble());
      assertEquals(expected, actual, 1e-12 * Math.abs(expected) + 1e-14, "p=" + g.get("p") + " df=" + g.get("df"));
      checked++;
    }
    assertEquals(90, checked);
  }

  @Test
  void commonsMathsDefaultSolverAccuracyWouldLoseDigitsTheTighterOneKeeps() {
    // t(0.975, 4) = 2.7764451051977934 (mpmath): the default 1e-9 absolute accuracy misses it by more than 1e-12.
    double defaultAccuracy = new TDistribution(null, 4, TDistribution.DEFAULT_INVERSE_ABSOLUTE_ACCURACY)
        .inverseCumulativeProbability(0.975);
    assertTrue(Math.abs(defaultAccuracy - 2.7764451051977934) > 1e-12, "default accuracy gave " + defaultAccuracy);
    assertEquals(2.7764451051977934, Quantiles.studentT(0.975, 4), 1e-14);
  }

  @Test
  void normalQuantilesMatchMpmathToFourteenDigitsAndToNineFarInTheLowerTail() {
    int checked = 0;
    for (JsonNode g : golden.get("normal_quantiles")) {
      double p = g.get("p").asDouble();
      double expected = g.get("z").asDouble();
      // erfInv(2p - 1): for p = 1e-10 the subtraction rounds away digits; intervals only ask for p > 0.5.
      double relative = p < 1e-6 ? 1e-8 : 1e-14;
      assertEquals(expected, Quantiles.normal(p), relative * Math.abs(expected) + 1e-15, "p=" + p);
      checked++;
    }
    assertEquals(12, checked);
    assertEquals(1.959963984540054, Quantiles.normal(0.975), 1e-15);
  }

  @Test
  void studentTApproachesTheNormalForManyDegreesOfFreedom() {
    assertEquals(Quantiles.normal(0.975), Quantiles.studentT(0.975, 1e7), 1e-6);
  }

  @Test
  void rejectsProbabilitiesOutsideTheOpenUnitIntervalAndBadDegrees() {
    assertThrows(IllegalArgumentException.class, () -> Quantiles.normal(0));
    assertThrows(IllegalArgumentException.class, () -> Quantiles.normal(1));
    assertThrows(IllegalArgumentException.class, () -> Quantiles.studentT(Double.NaN, 3));
    assertThrows(IllegalArgumentException.class, () -> Quantiles.studentT(0.9, 0));
  }
}
