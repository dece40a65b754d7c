package io.sparkdpo.distributed;

import io.sparkdpo.io.Storage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Runs a {@link WorkerTask} through {@link WorkerLoop} on W threads of one JVM (a ring on 127.0.0.1), no Spark. */
final class InProcessRun {
  static final RingOptions RING = RingOptions.defaults().withChunkBytes(4096)
      .withIoTimeout(Duration.ofSeconds(20)).withConnectTimeout(Duration.ofSeconds(20));

  /** What each rank did: its outcome and what it sent to the (absent) driver. */
  record Result(List<InProcessRing.Outcome<WorkerLoop.Completed>> outcomes, List<RecordingChannel> channels) {
    WorkerLoop.Completed completed(int rank) {
      InProcessRing.Outcome<WorkerLoop.Completed> o = outcomes.get(rank);
      if (o.error() != null) {
        throw new AssertionError("rank " + rank + " failed: " + o.error(), o.error());
      }
      return o.value();
    }

    Throwable error(int rank) {
      return outcomes.get(rank).error();
    }
  }

  private InProcessRun() {}

  static Result run(WorkerTask task, String runDir, ShardPlan shards, TrainingSchedule schedule,
      FaultPlan faults) throws Exception {
    return run(task, runDir, shards, schedule, faults, RING);
  }

  static Result run(WorkerTask task, String runDir, ShardPlan shards, TrainingSchedule schedule,
      FaultPlan faults, RingOptions ringOptions) throws Exception {
    return run(task, runDir, shards, schedule, faults, ringOptions, false);
  }

  /** @param restartOnCorrupt {@code restart_on_corrupt_checkpoints} */
  static Result run(WorkerTask task, String runDir, ShardPlan shards, TrainingSchedule schedule,
      FaultPlan faults, RingOptions ringOptions, boolean restartOnCorrupt) throws Exception {
    int world = shards.workers();
    Storage storage = Storage.local();
    List<RecordingChannel> channels = new ArrayList<>();
    for (int r = 0; r < world; r++) {
      channels.add(new RecordingChannel());
    }
    if (world == 1) {
      WorkerContext ctx = context(0, new LocalAllReduce(), runDir, shards, schedule, faults, storage,
          channels.get(0), restartOnCorrupt);
      long start = System.nanoTime();
      try {
        WorkerLoop.Completed done = new WorkerLoop(ctx, task, () -> { }).run();
        return new Result(List.of(new InProcessRing.Outcome<>(done, null, elapsed(start))), channels);
      } catch (Exception | Error e) {
        return new Result(List.of(new InProcessRing.Outcome<>(null, e, elapsed(start))), channels);
      }
    }
    try (InProcessRing ring = InProcessRing.connect(world, ringOptions)) {
      return new Result(ring.outcomes(group -> {
        WorkerContext ctx = context(group.rank(), group, runDir, shards, schedule, faults, storage,
            channels.get(group.rank()), restartOnCorrupt);
        try {
          return new WorkerLoop(ctx, task, () -> { }).run();
        } catch (Exception | Error e) {
          group.close(); // as the barrier task does: the peers fail at once instead of at the timeout
          throw e;
        }
      }, 60), channels);
    }
  }

  private static WorkerContext context(int rank, AllReduce group, String runDir, ShardPlan shards,
      TrainingSchedule schedule, FaultPlan faults, Storage storage, RecordingChannel channel,
      boolean restartOnCorrupt) {
    return new WorkerContext(rank, shards.workers(), 1, "in-process", Storage.qualify(runDir),
        shards.train().get(rank), shards.eval().get(rank), "cpu", storage, group, channel, new FaultInjector(faults, rank, storage, runDir),
        schedule, null, false, restartOnCorrupt);
  }

  private static long elapsed(long start) {
    return (System.nanoTime() - start) / 1_000_000;
  }
}
