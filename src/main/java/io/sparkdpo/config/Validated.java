package io.sparkdpo.config;

/** A configuration section that checks its own ranges; keys are reported with the given prefix. */
public interface Validated {
  void validate(String prefix, Violations v);
}
