package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ConsoleProgressTest {
  private static final long SECOND = 1_000_000_000L;

  @Test
  void rendersBarRateEtaAndMetrics() {
    AtomicLong now = new AtomicLong();
    ConsoleProgress p = new ConsoleProgress("dpo", 1000, 0, new PrintStream(new ByteArrayOutputStream()), true,
        now::get, SECOND);
    now.set(200 * SECOND);
    String line = p.render(250, Map.of("loss", 0.64213, "learning_rate", 4.2e-7), now.get());
    assertEquals("dpo  25.0% [#####...............] 250/1000  1.25 it/s  elapsed 0:03:20  ETA 0:10:00  "
        + "loss 0.6421  lr 4.20e-07", line);
  }

  @Test
  void rateAfterAResumeCountsOnlyNewSteps() {
    AtomicLong now = new AtomicLong();
    ConsoleProgress p = new ConsoleProgress("sft", 100, 50, new PrintStream(new ByteArrayOutputStream()), true,
        now::get, SECOND);
    now.set(10 * SECOND);
    assertTrue(p.render(60, Map.of(), now.get()).contains("1.00 it/s  elapsed 0:00:10  ETA 0:00:40"));
    assertTrue(p.render(50, Map.of(), 0).contains("ETA --:--"));
  }

  @Test
  void onATerminalRedrawsOneLine() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    AtomicLong now = new AtomicLong();
    ConsoleProgress p = new ConsoleProgress("dpo", 3, 0, new PrintStream(bytes, true, StandardCharsets.UTF_8), true,
        now::get, SECOND);
    for (int s = 1; s <= 3; s++) {
      now.addAndGet(SECOND);
      p.update(s, Map.of("loss", 1.0 / s));
    }
    p.finish();
    String out = bytes.toString(StandardCharsets.UTF_8);
    assertEquals(3, out.chars().filter(c -> c == '\r').count());
    assertEquals(1, out.chars().filter(c -> c == '\n').count(), out);
    assertTrue(out.endsWith("loss 0.3333\n"), out);
  }

  @Test
  void inLogsPrintsPeriodicLinesAndTheEnd() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    AtomicLong now = new AtomicLong();
    ConsoleProgress p = new ConsoleProgress("dpo", 100, 0, new PrintStream(bytes, true, StandardCharsets.UTF_8), false,
        now::get, 30 * SECOND);
    for (int s = 1; s <= 100; s++) {
      now.addAndGet(SECOND);
      p.update(s, Map.of());
    }
    p.finish();
    String[] lines = bytes.toString(StandardCharsets.UTF_8).split("\n");
    // steps 1, 31, 61, 91 (every 30 s) and 100 (the end); finish adds nothing new.
    assertEquals(5, lines.length, String.join("\n", lines));
    assertTrue(lines[1].contains(" 31/100 "), lines[1]);
    assertTrue(lines[4].contains("100/100"), lines[4]);
    assertTrue(!bytes.toString(StandardCharsets.UTF_8).contains("\r"));
  }

  @Test
  void clockFormatsHoursMinutesSeconds() {
    assertEquals("0:00:00", ConsoleProgress.clock(0.2));
    assertEquals("1:01:05", ConsoleProgress.clock(3665));
    assertEquals("27:46:40", ConsoleProgress.clock(100000));
  }
}
