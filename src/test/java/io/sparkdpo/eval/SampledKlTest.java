package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SampledKlTest {
  private static final double TOL = 1e-12;

  // Three sampled sequences of 2, 3 and 1 tokens.
  private static final double[][] POLICY = {{-0.5, -1.0}, {-0.2, -0.3, -2.0}, {-0.1}};
  private static final double[][] SFT = {{-0.7, -1.5}, {-0.4, -0.2, -2.5}, {-0.6}};

  @Test
  void perSequenceSumsAreSumsOfLogRatios() {
    // (0.2 + 0.5), (0.2 - 0.1 + 0.5), (0.5)
    assertArrayEquals(new double[] {0.7, 0.6, 0.5}, SampledKl.sequenceSums(POLICY, SFT), TOL);
  }

  @Test
  void perTokenMeanWeighsEveryTokenEquallyAndPerSequenceMeanEverySequence() {
    SampledKl kl = SampledKl.of(POLICY, SFT, 0.95);
    assertEquals(6, kl.tokens());
    assertEquals(1.8 / 6, kl.perToken(), TOL);
    assertEquals(0.6, kl.perSequence().mean(), TOL);
    assertEquals(3, kl.perSequence().n());
    // sums 0.7, 0.6, 0.5: s = 0.1, se = 0.1 / sqrt(3), t(0.975, 2) = 4.302652729749464
    assertEquals(0.6 - 4.302652729749464 * 0.1 / Math.sqrt(3), kl.perSequence().low(), 1e-11);
  }

  @Test
  void identicalModelsHaveZeroKl() {
    SampledKl kl = SampledKl.of(POLICY, POLICY, 0.95);
    assertEquals(0.0, kl.perToken(), 0.0);
    assertEquals(0.0, kl.perSequence().mean(), 0.0);
  }

  @Test
  void rejectsMismatchedShapesAndImpossibleLogProbsNamingSequenceAndToken() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SampledKl.of(POLICY, new double[][] {{-0.7, -1.5}, {-0.4, -0.2}, {-0.6}}, 0.95));
    assertTrue(e.getMessage().contains("sequence 1"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> SampledKl.of(new double[][] {{-0.1, 0.2}, {-1}}, new double[][] {{-0.1, -0.2}, {-1}}, 0.95));
    assertTrue(e.getMessage().contains("sequence 0, token 1"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> SampledKl.of(new double[][] {{Double.NEGATIVE_INFINITY}, {-1}}, new double[][] {{-1}, {-1}}, 0.95));
    assertThrows(IllegalArgumentException.class, () -> SampledKl.of(new double[2][0], new double[2][0], 0.95));
    assertThrows(IllegalArgumentException.class, () -> SampledKl.of(POLICY, new double[2][], 0.95));
  }
}
