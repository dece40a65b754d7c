package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** PPO's prompt order: seeded passes over all prompts, read as one sequence, a function of seed and update only. */
class PromptOrderTest {
  @Test
  void everyPassTakesEachPromptOnceAndBatchesCutTheSequenceWhereverTheyFall() {
    PromptOrder order = new PromptOrder(5, 42);
    int[] sequence = new int[15];
    for (int u = 0; u < 5; u++) {
      System.arraycopy(order.batch(u, 3), 0, sequence, 3 * u, 3); // 5 updates of 3 = 3 passes of 5
    }
    for (int pass = 0; pass < 3; pass++) {
      int[] seen = Arrays.copyOfRange(sequence, 5 * pass, 5 * pass + 5);
      Arrays.sort(seen);
      assertArrayEquals(new int[] {0, 1, 2, 3, 4}, seen, "pass " + pass + " of " + Arrays.toString(sequence));
    }
    assertFalse(Arrays.equals(Arrays.copyOfRange(sequence, 0, 5), Arrays.copyOfRange(sequence, 5, 10)),
        "each pass has its own order: " + Arrays.toString(sequence));
    // Another batch size reads the same sequence: update 2 of 5 is positions 10..14.
    assertArrayEquals(Arrays.copyOfRange(sequence, 10, 15), order.batch(2, 5));
    assertArrayEquals(order.batch(4, 3), new PromptOrder(5, 42).batch(4, 3), "a resumed run picks the same");
  }

  @Test
  void theSeedChangesTheOrder() {
    int[] a = new PromptOrder(64, 1).batch(0, 64);
    int[] b = new PromptOrder(64, 2).batch(0, 64);
    assertFalse(Arrays.equals(a, b));
    assertEquals(IntStream.range(0, 64).sum(), Arrays.stream(a).sum());
  }
}
