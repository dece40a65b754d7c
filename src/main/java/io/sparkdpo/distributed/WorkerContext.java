package io.sparkdpo.distributed;

import io.sparkdpo.io.FolderLease;
import io.sparkdpo.io.Storage;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.GradientReducer;
import io.sparkdpo.train.ReplicaGroup;
import java.nio.FloatBuffer;
import java.util.List;

/**
 * Everything one rank's {@link WorkerTask} gets inside its barrier task.
 *
 * @param rank this rank, 0 to {@code worldSize - 1} (the barrier task's partition)
 * @param attempt the driver's stage submission, 1 for the first
 * @param runDir the run folder, qualified ({@code file:}, {@code hdfs:}, {@code s3a:}): shared by all ranks
 * @param shards this rank's training shards, as the driver planned them ({@link ShardPlan})
 * @param evalShards this rank's evaluation shards (may be none)
 * @param device {@code gpu:N} when Spark assigned this task a GPU, else {@code cpu}
 * @param storage file access with the job's Hadoop settings ({@code spark.hadoop.*})
 * @param allReduce the connected group of all ranks
 * @param metrics the line to the driver (used by {@link WorkerLoop}; a task may send nothing itself)
 * @param faults the run's fault injection (used by {@link WorkerLoop})
 * @param keepCheckpoints committed checkpoints to keep ({@code save_total_limit}); null keeps all
 * @param fenced the run folder holds the run's lease ({@link FolderLease}): checkpoints commit only while it names
 *     this run and attempt
 * @param restartOnCorruptCheckpoints committed checkpoints exist and none verifies: discard them and start at step
 *     0 instead of stopping
 */
public record WorkerContext(
    int rank,
    int worldSize,
    int attempt,
    String runId,
    String runDir,
    List<String> shards,
    List<String> evalShards,
    String device,
    Storage storage,
    AllReduce allReduce,
    MetricsChannel metrics,
    FaultInjector faults,
    TrainingSchedule schedule,
    Integer keepCheckpoints,
    boolean fenced,
    boolean restartOnCorruptCheckpoints) {

  /** Unfenced (no lease: in-process runs), stopping on corrupt checkpoints. */
  public WorkerContext(int rank, int worldSize, int attempt, String runId, String runDir, List<String> shards,
      List<String> evalShards, String device, Storage storage, AllReduce allReduce, MetricsChannel metrics,
      FaultInjector faults, TrainingSchedule schedule, Integer keepCheckpoints) {
    this(rank, worldSize, attempt, runId, runDir, shards, evalShards, device, storage, allReduce, metrics, faults,
        schedule, keepCheckpoints, false, false);
  }

  public WorkerContext {
    shards = List.copyOf(shards);
    evalShards = List.copyOf(evalShards);
    if (allReduce.rank() != rank || allReduce.worldSize() != worldSize) {
      throw new IllegalArgumentException("the all-reduce group is rank " + allReduce.rank() + " of "
          + allReduce.worldSize() + ", the context rank " + rank + " of " + worldSize);
    }
  }

  /** The all-reduce as the training core's reducer ({@code OptimizerStep} takes one). */
  public GradientReducer gradientReducer() {
    return replicaGroup();
  }

  /**
   * The all-reduce as a trainer's replica group: the gradient mean plus the rank-ordered sum and the all-gather a
   * loop that shares data between replicas needs (PPO's rollout).
   */
  public ReplicaGroup replicaGroup() {
    AllReduce group = allReduce;
    return new ReplicaGroup() {
      @Override
      public int rank() {
        return group.rank();
      }

      @Override
      public int worldSize() {
        return group.worldSize();
      }

      @Override
      public void allReduceMean(FloatBuffer direct) {
        group.allReduceMean(direct);
      }

      @Override
      public void allReduceSum(double[] values) {
        group.allReduceSum(values);
      }

      @Override
      public byte[][] allGather(byte[] mine) {
        return group.allGather(mine);
      }
    };
  }

  /** The run's checkpoints ({@code RUN/checkpoints}), fenced to this attempt when the folder is leased. */
  public CheckpointStore checkpoints() {
    CheckpointStore store = new CheckpointStore(storage, runDir, keepCheckpoints);
    if (!fenced) {
      return store;
    }
    Storage files = storage;
    String dir = runDir;
    String run = runId;
    int a = attempt;
    return store.fencedBy(attempt, action -> FolderLease.requireHolder(files, dir, run, a, action));
  }
}
