package io.sparkdpo.train;

import java.util.List;

/**
 * A step was refused because its loss or gradient is NaN or infinite. Names the step and every pair of the
 * batch, so the offending data can be found; the parameters and optimizer state are left as they were.
 */
public final class NonFiniteException extends RuntimeException {
  private static final int SHOWN = 64;
  private final long step;
  private final String quantity;
  private final double value;
  private final List<String> pairIds;

  public NonFiniteException(long step, String quantity, double value, List<String> pairIds) {
    super("step " + step + ": non-finite " + quantity + " (" + value + "); the update was refused. Pairs of the "
        + "batch (" + pairIds.size() + "): " + shown(pairIds));
    this.step = step;
    this.quantity = quantity;
    this.value = value;
    this.pairIds = List.copyOf(pairIds);
  }

  /** Throws when {@code value} is NaN or infinite. */
  public static void requireFinite(long step, String quantity, double value, List<String> pairIds) {
    if (!Double.isFinite(value)) {
      throw new NonFiniteException(step, quantity, value, pairIds);
    }
  }

  private static String shown(List<String> ids) {
    if (ids.size() <= SHOWN) {
      return String.join(", ", ids);
    }
    return String.join(", ", ids.subList(0, SHOWN)) + ", ... and " + (ids.size() - SHOWN) + " more";
  }

  public long step() {
    return step;
  }

  /** What was not finite: {@code loss} or {@code gradient}. */
  public String quantity() {
    return quantity;
  }

  /** The offending value (NaN or an infinity). */
  public double value() {
    return value;
  }

  public List<String> pairIds() {
    return pairIds;
  }
}
