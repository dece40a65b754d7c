package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * A deliberate failure of one training worker, once per run, for recovery tests and drills: rank {@code rank}
 * fails just before optimizer step {@code step} (1-based). The run folder records that it fired, so the
 * resubmitted stage does not fail again.
 */
public record FaultInjectionSettings(Kind kind, int rank, long step) {

  /** How the worker fails. */
  public enum Kind {
    /** No fault (the default). */
    @JsonProperty("none") NONE,
    /** The training task throws: a task failure, the executor survives. */
    @JsonProperty("exception") EXCEPTION,
    /** The executor JVM halts at once, without cleanup: an executor loss. */
    @JsonProperty("exit") EXIT
  }

  public boolean enabled() {
    return kind != null && kind != Kind.NONE;
  }

  /** Range checks against the number of workers; each problem names {@code prefix.key}. */
  public void validate(String prefix, int workers, Violations v) {
    v.require(kind != null, prefix + ".kind", "must be set", null);
    if (enabled()) {
      v.require(rank >= 0 && rank < workers, prefix + ".rank", "must name a worker, 0 to workers-1 (workers is "
          + workers + ")", rank);
      v.positive(prefix + ".step", step);
    }
  }
}
