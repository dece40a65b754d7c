package io.sparkdpo.data;

import io.sparkdpo.config.PrepareSettings;
import java.io.Serializable;

/**
 * What one rendering of a chat template may spend: wall-clock time, the length of any string it builds (and of its
 * output), and the bytes it allocates in total ({@link #ALLOCATION_PER_CHAR} per allowed char). A template that goes
 * beyond any of them fails with a template error instead of hanging or exhausting the JVM that renders it.
 *
 * @param timeoutNanos the render deadline
 * @param maxChars the longest string or output
 */
public record TemplateLimits(long timeoutNanos, long maxChars) implements Serializable {
  /** Legitimate renderings allocate a few copies of their output; 64 leaves room for Jinjava's own objects. */
  static final long ALLOCATION_PER_CHAR = 64;
  public static final TemplateLimits DEFAULT = new TemplateLimits(10_000_000_000L, 16L << 20);

  public static TemplateLimits of(PrepareSettings s) {
    return new TemplateLimits((long) (s.templateTimeoutS() * 1e9), s.templateMaxChars());
  }

  long maxAllocatedBytes() {
    return Math.max(256L << 20, ALLOCATION_PER_CHAR * maxChars);
  }

  /** As a human reads it: {@code 10 s}, {@code 0.2 s}. */
  String timeout() {
    double s = timeoutNanos / 1e9;
    return (s == Math.rint(s) ? Long.toString((long) s) : Double.toString(s)) + " s";
  }
}
