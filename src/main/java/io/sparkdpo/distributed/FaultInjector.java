package io.sparkdpo.distributed;

import io.sparkdpo.io.Storage;
import java.time.Instant;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fires the run's {@link FaultPlan} on its rank, before its step, once per run: the marker file
 * {@code RUN/faults/<fault>.fired} is written before the fault fires, so the resubmitted stage passes the same
 * step without failing again.
 */
public final class FaultInjector {
  /** Exit status of an executor halted by an {@code exit} fault. */
  public static final int EXIT_STATUS = 86;
  private static final Logger LOG = LoggerFactory.getLogger(FaultInjector.class);

  private final FaultPlan plan;
  private final int rank;
  private final Storage storage;
  private final String marker;

  public FaultInjector(FaultPlan plan, int rank, Storage storage, String runDir) {
    this.plan = plan;
    this.rank = rank;
    this.storage = storage;
    this.marker = Storage.join(Storage.join(Storage.qualify(runDir), "faults"), plan.markerName());
  }

  /** Called by the loop just before step {@code step}; fails here if the plan says so and it has not fired yet. */
  public void beforeStep(long step) {
    if (!plan.firesAt(rank, step) || storage.exists(marker)) {
      return;
    }
    String what = "injected fault (train.fault_injection): " + plan;
    storage.writeString(marker, what + ", fired at " + Instant.now() + " in pid " + ProcessHandle.current().pid()
        + "\n");
    switch (plan.kind()) {
      case EXCEPTION -> throw new InjectedFault(what);
      case EXIT -> {
        LOG.error("{}: halting this JVM with status {}", what, EXIT_STATUS);
        System.err.println(what + ": halting this JVM with status " + EXIT_STATUS);
        System.err.flush();
        Runtime.getRuntime().halt(EXIT_STATUS); // no shutdown hooks: as abrupt as a crash
      }
      case NONE -> throw new AssertionError("a disabled fault fired");
    }
  }

  /** The exception of an {@code exception} fault; retryable like any task failure. */
  public static final class InjectedFault extends RuntimeException {
    private static final long serialVersionUID = 1L;

    InjectedFault(String message) {
      super(message);
    }
  }
}
