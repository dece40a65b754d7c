package io.sparkdpo.config;

import java.util.List;

/** A configuration that cannot be used: unknown key, wrong type or value out of range. Raised before Spark starts. */
public final class ConfigException extends RuntimeException {
  private final List<String> problems;

  public ConfigException(List<String> problems) {
    super(problems.size() == 1
        ? "invalid configuration: " + problems.get(0)
        : "invalid configuration:\n  - " + String.join("\n  - ", problems));
    this.problems = List.copyOf(problems);
  }

  public ConfigException(String problem) {
    this(List.of(problem));
  }

  public List<String> problems() {
    return problems;
  }
}
