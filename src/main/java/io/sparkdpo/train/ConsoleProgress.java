package io.sparkdpo.train;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * A progress bar with rate and ETA on the console (stderr, so stdout stays clean for results). On a terminal it
 * redraws one line in place; otherwise (logs, CI, spark-submit) it prints a full line every
 * {@code periodNanos} and at the end, so log files are not flooded with carriage returns.
 *
 * <pre>dpo  42.0% [########............]  420/1000  1.35 it/s  elapsed 0:05:12  ETA 0:07:10  loss 0.6421  lr 4.20e-07</pre>
 */
public final class ConsoleProgress {
  private static final int BAR = 20;
  private final String label;
  private final long totalSteps;
  private final long startStep;
  private final PrintStream out;
  private final boolean interactive;
  private final LongSupplier nanoClock;
  private final long periodNanos;
  private final long startNanos;
  private long lastPrint = Long.MIN_VALUE;
  private int lastWidth;
  private String unprinted;

  /**
   * @param startStep the step the run starts from (non-zero after a resume; the rate counts only new steps)
   * @param interactive true on a terminal: redraw in place
   */
  public ConsoleProgress(String label, long totalSteps, long startStep, PrintStream out, boolean interactive,
                         LongSupplier nanoClock, long periodNanos) {
    this.label = label;
    this.totalSteps = totalSteps;
    this.startStep = startStep;
    this.out = out;
    this.interactive = interactive;
    this.nanoClock = nanoClock;
    this.periodNanos = periodNanos;
    this.startNanos = nanoClock.getAsLong();
  }

  /** On stderr; interactive when the JVM has a console; periodic lines every 30 s otherwise. */
  public static ConsoleProgress onStderr(String label, long totalSteps, long startStep) {
    return new ConsoleProgress(label, totalSteps, startStep, System.err, System.console() != null,
        System::nanoTime, 30_000_000_000L);
  }

  /** Reports that {@code step} steps are done; shows {@code loss} and {@code learning_rate} when present. */
  public void update(long step, Map<String, ? extends Number> metrics) {
    long now = nanoClock.getAsLong();
    String line = render(step, metrics, now);
    if (interactive) {
      int pad = Math.max(0, lastWidth - line.length());
      out.print("\r" + line + " ".repeat(pad));
      lastWidth = line.length();
      out.flush();
    } else if (lastPrint == Long.MIN_VALUE || now - lastPrint >= periodNanos || step >= totalSteps) {
      out.println(line);
      lastPrint = now;
      unprinted = null;
    } else {
      unprinted = line;
    }
  }

  /** Ends the bar: a newline on a terminal, otherwise the last state if it was not printed yet. */
  public void finish() {
    if (interactive) {
      out.println();
    } else if (unprinted != null) {
      out.println(unprinted);
    }
    out.flush();
    unprinted = null;
  }

  String render(long step, Map<String, ? extends Number> metrics, long now) {
    double fraction = totalSteps <= 0 ? 0 : Math.min(1.0, (double) step / totalSteps);
    int filled = (int) Math.round(fraction * BAR);
    double elapsed = (now - startNanos) / 1e9;
    long done = step - startStep;
    double rate = elapsed > 0 && done > 0 ? done / elapsed : 0;
    String eta = rate > 0 ? clock((totalSteps - step) / rate) : "--:--";
    StringBuilder sb = new StringBuilder();
    sb.append(label).append(' ')
        .append(String.format(Locale.ROOT, "%5.1f%% ", 100 * fraction))
        .append('[').append("#".repeat(filled)).append(".".repeat(BAR - filled)).append("] ")
        .append(String.format(Locale.ROOT, "%d/%d  %.2f it/s  elapsed %s  ETA %s", step, totalSteps, rate,
            clock(elapsed), eta));
    Number loss = metrics.get(MetricNames.LOSS);
    if (loss != null) {
      sb.append(String.format(Locale.ROOT, "  loss %.4f", loss.doubleValue()));
    }
    Number lr = metrics.get(MetricNames.LEARNING_RATE);
    if (lr != null) {
      sb.append(String.format(Locale.ROOT, "  lr %.2e", lr.doubleValue()));
    }
    return sb.toString();
  }

  /** H:MM:SS. */
  static String clock(double seconds) {
    long s = Math.max(0, Math.round(seconds));
    return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  }
}
