package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.commons.math3.distribution.TDistribution;
import org.junit.jupiter.api.Test;

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
  void normalQuantilesMatchMpmathToFourteenDigits() {
    for (JsonNode g : golden.get("normal_quantiles")) {
      double expected = g.get("z").asDouble();
      assertEquals(expected, Quantiles.normal(g.get("p").asDouble()), 1e-14 * Math.abs(expected) + 1e-15,
          "p=" + g.get("p"));
    }
    assertEquals(1.959963984540054, Quantiles.normal(0.975), 1e-15);
  }

  @Test
  void studentTAgreesWithCommonsMathOnAGrid() {
    for (int df = 3; df <= 400; df += 13) {
      TDistribution reference = new TDistribution(df);
      for (double p = 0.01; p < 1; p += 0.07) {
        assertEquals(reference.inverseCumulativeProbability(p), Quantiles.studentT(p, df), 1e-8,
            "p=" + p + " df=" + df);
        assertEquals(reference.cumulativeProbability(0.7 * df / 100), Quantiles.studentTCdf(0.7 * df / 100, df),
            1e-12, "cdf df=" + df);
      }
    }
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
