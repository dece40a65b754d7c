package io.sparkdpo.distributed;

import java.io.Serializable;
import java.util.List;

/**
 * What the driver sends one barrier task (one element of the stage's single-element partitions): the run, this
 * rank's training and evaluation shards, the schedule, the attempt, the fault to inject, and how to reach the driver's tracker.
 */
record WorkerSpec(String runId, String runDir, int attempt, int rank, int worldSize, List<String> shards,
                  List<String> evalShards, TrainingSchedule schedule, FaultPlan faults, Integer keepCheckpoints,
                  RingSettings ring, String trackerHost, int trackerPort, RunSecret secret, boolean ownJvm,
                  boolean restartOnCorruptCheckpoints)
    implements Serializable {

  /** Stops on corrupt checkpoints. */
  WorkerSpec(String runId, String runDir, int attempt, int rank, int worldSize, List<String> shards,
      List<String> evalShards, TrainingSchedule schedule, FaultPlan faults, Integer keepCheckpoints,
      RingSettings ring, String trackerHost, int trackerPort, RunSecret secret, boolean ownJvm) {
    this(runId, runDir, attempt, rank, worldSize, shards, evalShards, schedule, faults, keepCheckpoints, ring,
        trackerHost, trackerPort, secret, ownJvm, false);
  }

  static WorkerSpec of(RunSpec run, int attempt, int rank, DriverTracker tracker, boolean ownJvm) {
    return new WorkerSpec(run.runId(), run.runDir(), attempt, rank, run.worldSize(),
        run.shards().train().get(rank), run.shards().eval().get(rank), run.schedule(), run.faults(),
        run.keepCheckpoints(), run.ring(), tracker.host(), tracker.port(), tracker.secret(), ownJvm,
        run.restartOnCorruptCheckpoints());
  }
}
