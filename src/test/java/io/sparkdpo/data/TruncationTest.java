package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class TruncationTest {
  private static int[] range(int from, int to) {
    return IntStream.range(from, to).toArray();
  }

  @Test
  void pairsThatFitAreLeftAlone() throws BadRow {
    Truncation.Fitted f = new Truncation(10, 4, true, false).apply(range(0, 6), range(0, 4), range(0, 3));
    assertEquals(6, f.prompt().length);
    assertEquals(4, f.chosen().length);
    assertFalse(f.truncated());
  }

  @Test
  void keepEndCutsThePromptsStartThenResponsesToTheRoomLeft() throws BadRow {
    Truncation.Fitted f = new Truncation(10, 4, true, false).apply(range(0, 8), range(100, 109), range(200, 203));
    assertArrayEquals(range(4, 8), f.prompt());
    assertArrayEquals(range(100, 106), f.chosen());
    assertArrayEquals(range(200, 203), f.rejected());
    assertTrue(f.truncated());
  }

  @Test
  void keepStartCutsThePromptsEnd() throws BadRow {
    Truncation.Fitted f = new Truncation(10, 4, false, false).apply(range(0, 8), range(100, 104), range(200, 202));
    assertArrayEquals(range(0, 4), f.prompt());
    assertArrayEquals(range(100, 104), f.chosen());
  }

  @Test
  void aShortPromptIsKeptAndOnlyResponsesAreCut() throws BadRow {
    Truncation.Fitted f = new Truncation(10, 4, true, false).apply(range(0, 3), range(0, 20), range(0, 5));
    assertEquals(3, f.prompt().length);
    assertEquals(7, f.chosen().length);
    assertEquals(5, f.rejected().length);
    assertTrue(f.truncated());
  }

  @Test
  void quarantineModeRefusesPromptsThatWouldBeCut() throws BadRow {
    Truncation t = new Truncation(10, 4, true, true);
    BadRow e = assertThrows(BadRow.class, () -> t.apply(range(0, 8), range(0, 3), range(0, 3)));
    assertEquals(QuarantineReason.PROMPT_TOO_LONG, e.reason());
    assertEquals("the prompt has 8 tokens, more than max_prompt_length 4, and with the longer response (3 tokens) "
        + "exceeds max_length 10", e.detail());
    assertFalse(t.apply(range(0, 7), range(0, 3), range(0, 2)).truncated()); // long prompt, but the pair fits
  }
}
