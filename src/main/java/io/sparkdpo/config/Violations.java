package io.sparkdpo.config;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Collects range and consistency problems of a bound configuration, each naming its key. */
public final class Violations {
  private final List<String> problems = new ArrayList<>();

  public void require(boolean ok, String key, String rule, Object actual) {
    if (!ok) {
      problems.add(key + ": " + rule + " (got " + actual + ")");
    }
  }

  public void positive(String key, long value) {
    require(value > 0, key, "must be > 0", value);
  }

  public void positive(String key, double value) {
    require(value > 0 && Double.isFinite(value), key, "must be a finite number > 0", value);
  }

  public void nonNegative(String key, long value) {
    require(value >= 0, key, "must be >= 0", value);
  }

  public void nonNegative(String key, double value) {
    require(value >= 0 && Double.isFinite(value), key, "must be a finite number >= 0", value);
  }

  /** Requires lo <= value < hi (half-open, as TRL documents label smoothing and fractions). */
  public void inRange(String key, double value, double lo, double hi) {
    require(value >= lo && value < hi, key, "must be in [" + lo + ", " + hi + ")", value);
  }

  public void inClosedRange(String key, double value, double lo, double hi) {
    require(value >= lo && value <= hi, key, "must be in [" + lo + ", " + hi + "]", value);
  }

  public void notBlank(String key, String value) {
    require(value != null && !value.isBlank(), key, "must be set", value == null ? "null" : "\"" + value + "\"");
  }

  public void oneOf(String key, String value, String... allowed) {
    require(value != null && Arrays.asList(allowed).contains(value), key,
        "must be one of " + Arrays.toString(allowed), value);
  }

  public void add(String problem) {
    problems.add(problem);
  }

  public List<String> problems() {
    return List.copyOf(problems);
  }

  public void throwIfAny() {
    if (!problems.isEmpty()) {
      throw new ConfigException(problems);
    }
  }
}
