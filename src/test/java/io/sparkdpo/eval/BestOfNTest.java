package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class BestOfNTest {
  @Test
  void klEstimateIsLogNMinusNMinusOneOverN() {
    assertEquals(0.0, BestOfN.klEstimate(1), 0);
    assertEquals(Math.log(4) - 0.75, BestOfN.klEstimate(4), 1e-15);
    assertEquals(1.8350887222397811, BestOfN.klEstimate(16), 1e-15);
    assertThrows(IllegalArgumentException.class, () -> BestOfN.klEstimate(0));
  }

  @Test
  void keepsTheSelectorsBestAmongTheFirstNAndScoresItWithTheTrueReward() {
    double[][] selector = {{0.1, 0.9, 0.5, 2.0}, {1.0, 0.2, 1.0, 0.3}, {0.0, -1.0, 3.0, 0.0}};
    double[][] truth = {{1, 2, 3, 4}, {10, 20, 30, 40}, {5, 6, 7, 8}};
    BestOfN.Result one = BestOfN.evaluate(selector, truth, 1, 0.95);
    assertEquals((1 + 10 + 5) / 3.0, one.reward().mean(), 1e-12);
    assertEquals(0.0, one.kl(), 0);
    BestOfN.Result two = BestOfN.evaluate(selector, truth, 2, 0.95);
    assertEquals((2 + 10 + 5) / 3.0, two.reward().mean(), 1e-12); // the tie at prompt 1 goes to the earliest sample
    BestOfN.Result four = BestOfN.evaluate(selector, truth, 4, 0.95);
    assertEquals((4 + 10 + 7) / 3.0, four.reward().mean(), 1e-12);
    assertEquals((2.0 + 1.0 + 3.0) / 3, four.selectorScore(), 1e-12);
    assertEquals(BestOfN.klEstimate(4), four.kl(), 0);
    assertEquals(3, four.reward().n());
  }

  @Test
  void refusesMoreSamplesThanThereAreAndNonFiniteScores() {
    assertThrows(IllegalArgumentException.class, () -> BestOfN.best(new double[] {1, 2}, 3));
    assertThrows(IllegalArgumentException.class, () -> BestOfN.best(new double[] {1, Double.NaN}, 2));
  }
}
