package io.sparkdpo.distributed;

import io.sparkdpo.config.FaultInjectionSettings;
import io.sparkdpo.config.FaultInjectionSettings.Kind;
import java.io.Serializable;

/**
 * The fault to inject in a run, if any ({@code train.fault_injection}): rank {@code rank} fails just before step
 * {@code step}, once per run.
 */
public record FaultPlan(Kind kind, int rank, long step) implements Serializable {

  public static final FaultPlan NONE = new FaultPlan(Kind.NONE, 0, 0);

  public FaultPlan {
    if (kind == null) {
      throw new IllegalArgumentException("fault kind must be set");
    }
    if (kind != Kind.NONE && (rank < 0 || step < 1)) {
      throw new IllegalArgumentException("a fault needs rank >= 0 and step >= 1, got rank " + rank + ", step "
          + step);
    }
  }

  public static FaultPlan of(FaultInjectionSettings settings) {
    return settings.enabled() ? new FaultPlan(settings.kind(), settings.rank(), settings.step()) : NONE;
  }

  public boolean enabled() {
    return kind != Kind.NONE;
  }

  boolean firesAt(int atRank, long atStep) {
    return enabled() && rank == atRank && step == atStep;
  }

  /** The file under {@code RUN/faults/} that records that this fault fired. */
  String markerName() {
    return "rank-" + rank + "-step-" + step + "-" + kind.name().toLowerCase() + ".fired";
  }

  @Override
  public String toString() {
    return enabled() ? kind.name().toLowerCase() + " on rank " + rank + " before step " + step : "none";
  }
}
