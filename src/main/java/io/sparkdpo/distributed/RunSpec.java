package io.sparkdpo.distributed;

import io.sparkdpo.io.Storage;
import java.util.Objects;

/**
 * The driver's plan of a distributed run: where it lives, what each rank reads, how long it runs, how often it
 * may be resubmitted, and which fault to inject.
 *
 * @param label shown on the progress bar and in the Spark job description, e.g. {@code spark-dpo train}
 * @param runId names the run in job groups and ring sessions
 * @param runDir the run folder every executor can reach (HDFS, S3, or a shared local path); qualified here
 * @param shards the training and evaluation shards of each rank; the number of ranks is the world size
 * @param maxAttempts stage submissions before giving up ({@code max_attempts})
 * @param keepCheckpoints committed checkpoints to keep ({@code save_total_limit}); null keeps all
 * @param restartOnCorruptCheckpoints committed checkpoints exist, none verifies: train from step 0 (discarding
 *     them) instead of stopping ({@code restart_on_corrupt_checkpoints})
 * @param leaseTimeoutS a run folder lease older than this is stale ({@code lease_timeout_s}, {@link
 *     io.sparkdpo.io.FolderLease})
 */
public record RunSpec(String label, String runId, String runDir, ShardPlan shards,
                      TrainingSchedule schedule, int maxAttempts, Integer keepCheckpoints, FaultPlan faults,
                      RingSettings ring, boolean restartOnCorruptCheckpoints, int leaseTimeoutS) {

  /** Stops on corrupt checkpoints; the default lease timeout. */
  public RunSpec(String label, String runId, String runDir, ShardPlan shards, TrainingSchedule schedule,
      int maxAttempts, Integer keepCheckpoints, FaultPlan faults, RingSettings ring) {
    this(label, runId, runDir, shards, schedule, maxAttempts, keepCheckpoints, faults, ring, false,
        (int) io.sparkdpo.io.FolderLease.DEFAULT_TIMEOUT.toSeconds());
  }

  public RunSpec {
    Objects.requireNonNull(label, "label");
    Objects.requireNonNull(runId, "runId");
    runDir = Storage.qualify(Objects.requireNonNull(runDir, "runDir"));
    Objects.requireNonNull(shards, "shards");
    Objects.requireNonNull(schedule, "schedule");
    Objects.requireNonNull(faults, "faults");
    Objects.requireNonNull(ring, "ring");
    if (leaseTimeoutS < 1) {
      throw new IllegalArgumentException("lease_timeout_s must be >= 1, got " + leaseTimeoutS);
    }
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("max_attempts must be >= 1, got " + maxAttempts);
    }
    if (faults.enabled() && faults.rank() >= shards.workers()) {
      throw new IllegalArgumentException("fault injection names rank " + faults.rank() + " but the run has "
          + shards.workers() + " workers");
    }
  }

  public int worldSize() {
    return shards.workers();
  }
}
