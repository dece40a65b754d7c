package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class MetricsHistoryTest {
  private static final String LINES = String.join("\n",
      "{\"step\":1,\"loss\":0.69,\"rewards/accuracies\":0.5,\"learning_rate\":1e-6,\"epoch\":0.1}",
      "{\"step\":2,\"loss\":0.6,\"grad_norm\":\"NaN\"}",
      "",
      "{\"step\":2,\"eval/loss\":0.65,\"eval/rewards/accuracies\":0.55,\"eval/rewards/margins\":0.02}",
      "{\"step\":3,\"loss\":0.5,\"note\":\"resumed\"}",
      "{\"step\":3,\"loss\":0.45}",
      "{\"step\":4,\"eval/loss\":0.5,\"eval/rewards/accuracies\":0.7,\"eval/rewards/margins\":0.3}",
      "");

  @Test
  void seriesArePerKeyByStepWithTheLaterLineWinningARepeatedStep() {
    MetricsHistory h = MetricsHistory.parse(LINES, "run/metrics.jsonl");
    MetricsHistory.Series loss = h.series("loss");
    assertArrayEquals(new double[] {1, 2, 3}, loss.steps());
    assertArrayEquals(new double[] {0.69, 0.6, 0.45}, loss.values());
    MetricsHistory.Series acc = h.series("eval/rewards/accuracies");
    assertArrayEquals(new double[] {2, 4}, acc.steps());
    assertArrayEquals(new double[] {0.55, 0.7}, acc.values());
    assertEquals(0.3, h.last("eval/rewards/margins").getAsDouble());
    assertTrue(h.last("eval/rewards/chosen").isEmpty());
    assertTrue(Double.isNaN(h.series("grad_norm").lastValue()));
    assertEquals(4, h.lastStep());
    assertEquals(6, h.rows().size());
    assertTrue(h.series("note").isEmpty());
  }

  @Test
  void malformedLinesAreErrorsNamingFileLineAndField() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MetricsHistory.parse("{\"step\":1,\"loss\":0.5}\n{\"loss\":0.4}\n", "m.jsonl"));
    assertEquals("m.jsonl line 2: field 'step' must be a whole number, got nothing", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> MetricsHistory.parse("{\"step\":1.5,\"loss\":0.5}\n", "m.jsonl"));
    assertEquals("m.jsonl line 1: field 'step' must be a whole number, got 1.5", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> MetricsHistory.parse("{\"step\":1}\n\n{\"step\":2,\"loss\":", "m.jsonl"));
    assertTrue(e.getMessage().startsWith("m.jsonl line 3: not valid JSON"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> MetricsHistory.parse("[1,2]\n", "m.jsonl"));
    assertEquals("m.jsonl line 1: expected a JSON object", e.getMessage());
  }
}
