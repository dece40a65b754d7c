package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.FaultInjectionSettings.Kind;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricsWindow;
import io.sparkdpo.train.PayloadWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The worker loop on an in-process ring: equivalence, resume, divergence detection, without Spark. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class WorkerLoopTest {
  private static final SyntheticRegressionTask TASK = SyntheticRegressionTask.standard(false);

  @TempDir
  Path tmp;

  private ShardPlan shards(int workers) {
    return SyntheticRunSpecs.plan(SyntheticRunSpecs.writeShards(tmp.resolve("data"), TASK), workers);
  }

  private String runDir(String name) {
    return Storage.qualify(tmp.resolve(name).toString());
  }

  @Test
  void twoRanksEachReadingOneShardMatchOneRankReadingBoth() throws Exception {
    TrainingSchedule schedule = new TrainingSchedule(20, 1, 10, 10, 5);
    InProcessRun.Result one = InProcessRun.run(TASK, runDir("w1"), shards(1), schedule, FaultPlan.NONE);
    InProcessRun.Result two = InProcessRun.run(TASK, runDir("w2"), shards(2), schedule, FaultPlan.NONE);

    assertEquals(20, one.completed(0).stepsDone());
    assertEquals(two.completed(0).checksum(), two.completed(1).checksum());
    Map<Long, Map<String, Double>> oneSteps = one.channels().get(0).steps;
    Map<Long, Map<String, Double>> twoSteps = two.channels().get(0).steps;
    assertEquals(20, oneSteps.size());
    assertEquals(20, twoSteps.size());
    assertTrue(two.channels().get(1).steps.isEmpty(), "only rank 0 reports steps");
    for (long s = 1; s <= 20; s++) {
      double a = oneSteps.get(s).get("loss");
      double b = twoSteps.get(s).get("loss");
      assertEquals(a, b, 1e-5 * Math.max(1, Math.abs(a)), "loss at step " + s);
    }
    // The loss went down: the run trained, it did not just agree on nothing.
    assertTrue(oneSteps.get(20L).get("loss") < 0.5 * oneSteps.get(1L).get("loss"), oneSteps.toString());
    assertEquals(one.channels().get(0).evals.keySet(), two.channels().get(0).evals.keySet());
    assertEquals(one.channels().get(0).evals.get(20L).get("eval/loss"),
        two.channels().get(0).evals.get(20L).get("eval/loss"), 1e-5);

    float[] w1 = SyntheticRegressionTask.weightsAt(runDir("w1"), 20);
    float[] w2 = SyntheticRegressionTask.weightsAt(runDir("w2"), 20);
    assertEquals(4096, w1.length);
    double maxDiff = 0;
    for (int i = 0; i < w1.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(w1[i] - w2[i]));
    }
    assertTrue(maxDiff <= 1e-5, "max parameter difference " + maxDiff);
    assertEquals(List.of(10L, 20L), new CheckpointStore(Storage.local(), runDir("w2"), null).committedSteps());
    // Rank 0 writes transformers' trainer_state.json into each checkpoint: the same history whatever W.
    JsonNode s1 = Json.MAPPER.readTree(tmp.resolve("w1/checkpoint-20/trainer_state.json").toFile());
    JsonNode s2 = Json.MAPPER.readTree(tmp.resolve("w2/checkpoint-20/trainer_state.json").toFile());
    assertEquals(20, s2.get("global_step").asInt());
    assertEquals(20 + 2, s2.get("log_history").size(), "20 logged steps and 2 evaluations");
    for (int i = 0; i < 22; i++) {
      JsonNode a = s1.get("log_history").get(i);
      JsonNode b = s2.get("log_history").get(i);
      assertEquals(a.get("step"), b.get("step"));
      String key = a.has("eval_loss") ? "eval_loss" : "loss";
      assertEquals(a.get(key).asDouble(), b.get(key).asDouble(), 1e-5 * Math.max(1, Math.abs(a.get(key).asDouble())));
    }
  }

  @Test
  void aRunResumedAfterAnInjectedFaultEndsWithTheSameBitsAsAnUninterruptedRun() throws Exception {
    ShardPlan byRank = shards(2);
    TrainingSchedule schedule = new TrainingSchedule(12, 1, 0, 5, 3);
    InProcessRun.Result clean = InProcessRun.run(TASK, runDir("clean"), byRank, schedule, FaultPlan.NONE);

    FaultPlan fault = new FaultPlan(Kind.EXCEPTION, 1, 7);
    InProcessRun.Result failed = InProcessRun.run(TASK, runDir("faulty"), byRank, schedule, fault);
    assertInstanceOf(FaultInjector.InjectedFault.class, failed.error(1));
    assertInstanceOf(CollectiveException.class, failed.error(0), String.valueOf(failed.error(0)));
    assertEquals(List.of(5L), new CheckpointStore(Storage.local(), runDir("faulty"), null).committedSteps());
    assertTrue(Files.exists(tmp.resolve("faulty/faults/rank-1-step-7-exception.fired")));

    InProcessRun.Result resumed = InProcessRun.run(TASK, runDir("faulty"), byRank, schedule, fault);
    assertEquals(12, resumed.completed(1).stepsDone());
    assertEquals(List.of("started 5", "finished 12"), resumed.channels().get(0).events);
    assertEquals(clean.completed(0).checksum(), resumed.completed(0).checksum());
    assertArrayEquals(SyntheticRegressionTask.weightsAt(runDir("clean"), 12),
        SyntheticRegressionTask.weightsAt(runDir("faulty"), 12));
    // Steps 6..12 were reported again by the resumed attempt, with the uninterrupted run's numbers.
    assertEquals(clean.channels().get(0).steps.get(9L), resumed.channels().get(0).steps.get(9L));
    // trainer_state.json's history came back from checkpoint 5 and went on: the uninterrupted run's, entry for entry.
    JsonNode cleanLog = Json.MAPPER.readTree(tmp.resolve("clean/checkpoint-12/trainer_state.json").toFile())
        .get("log_history");
    JsonNode resumedLog = Json.MAPPER.readTree(tmp.resolve("faulty/checkpoint-12/trainer_state.json").toFile())
        .get("log_history");
    assertEquals(12 + 1, cleanLog.size(), "12 logged steps and the final evaluation");
    assertEquals(cleanLog.size(), resumedLog.size());
    for (int i = 0; i < cleanLog.size(); i++) {
      for (String key : List.of("step", "loss", "eval_loss")) {
        assertEquals(cleanLog.get(i).get(key), resumedLog.get(i).get(key), key + " at entry " + i);
      }
    }
  }

  /** The mean over steps from..to of a step metric, summed in step order as the window sums. */
  private static double windowMean(Map<Long, Map<String, Double>> steps, String key, long from, long to) {
    double sum = 0;
    for (long s = from; s <= to; s++) {
      sum += steps.get(s).get(key);
    }
    return sum / (to - from + 1);
  }

  @Test
  void loggedRecordsAreMeansOverTheStepsSinceTheLastLogWithOneAndTwoRanks() throws Exception {
    TrainingSchedule schedule = new TrainingSchedule(10, 4, 0, 0, 0);
    InProcessRun.Result one = InProcessRun.run(TASK, runDir("window-w1"), shards(1), schedule, FaultPlan.NONE);
    InProcessRun.Result two = InProcessRun.run(TASK, runDir("window-w2"), shards(2), schedule, FaultPlan.NONE);
    for (InProcessRun.Result r : List.of(one, two)) {
      RecordingChannel rank0 = r.channels().get(0);
      assertEquals(List.of(4L, 8L, 10L), List.copyOf(rank0.logs.keySet()), "every logging_steps and the last step");
      long from = 1;
      for (long to : rank0.logs.keySet()) {
        Map<String, Double> logged = rank0.logs.get(to);
        assertEquals(windowMean(rank0.steps, "loss", from, to), logged.get("loss"), 0, "loss, steps " + from + ".." + to);
        assertEquals(rank0.steps.get(to).get("learning_rate"), logged.get("learning_rate"), 0);
        assertEquals(rank0.steps.get(to).get("grad_norm"), logged.get("grad_norm"), 0);
        assertEquals(rank0.steps.get(to).get("epoch"), logged.get("epoch"), 0);
        from = to + 1;
      }
      // The loss falls quickly at first: a window mean differs from the single step at the log point.
      assertTrue(rank0.logs.get(4L).get("loss") > 1.05 * rank0.steps.get(4L).get("loss"), rank0.logs.toString());
    }
    assertTrue(two.channels().get(1).logs.isEmpty(), "only rank 0 sends the log");
    for (long s : List.of(4L, 8L, 10L)) {
      double a = one.channels().get(0).logs.get(s).get("loss");
      assertEquals(a, two.channels().get(0).logs.get(s).get("loss"), 1e-5 * Math.max(1, Math.abs(a)));
    }
  }

  @Test
  void aResumeFromACheckpointInsideALoggingWindowLogsTheUninterruptedRunsNumbers() throws Exception {
    ShardPlan byRank = shards(2);
    // Logs after 4, 8, 12; the checkpoint after step 5 falls inside the window 5..8, the fault at step 7 after it.
    TrainingSchedule schedule = new TrainingSchedule(12, 4, 0, 5, 0);
    InProcessRun.Result clean = InProcessRun.run(TASK, runDir("window-clean"), byRank, schedule, FaultPlan.NONE);
    FaultPlan fault = new FaultPlan(Kind.EXCEPTION, 1, 7);
    InProcessRun.run(TASK, runDir("window-faulty"), byRank, schedule, fault);
    Checkpoint five = new CheckpointStore(Storage.local(), runDir("window-faulty"), null).open(5);
    MetricsWindow.State carried = five.readJson(MetricsWindow.FILE, MetricsWindow.State.class);
    assertEquals(5, carried.lastStep());
    assertEquals(clean.channels().get(0).steps.get(5L).get("loss"), carried.sums().get("loss"), 0,
        "the open window holds step 5 alone");

    InProcessRun.Result resumed = InProcessRun.run(TASK, runDir("window-faulty"), byRank, schedule, fault);
    assertEquals(List.of(8L, 12L), List.copyOf(resumed.channels().get(0).logs.keySet()));
    for (long s : List.of(8L, 12L)) {
      assertEquals(clean.channels().get(0).logs.get(s), resumed.channels().get(0).logs.get(s), "log after step " + s);
    }
    assertEquals(windowMean(clean.channels().get(0).steps, "loss", 5, 8),
        resumed.channels().get(0).logs.get(8L).get("loss"), 0);
  }

  /** The drill: with every checkpoint corrupt, training silently restarted at step 0 and pruned the evidence. */
  @Test
  void whenNoCheckpointVerifiesTheRunStopsNamingThemUnlessARestartIsAsked() throws Exception {
    ShardPlan byRank = shards(2);
    TrainingSchedule schedule = new TrainingSchedule(10, 1, 0, 5, 5);
    InProcessRun.Result clean = InProcessRun.run(TASK, runDir("fresh"), byRank, schedule, FaultPlan.NONE);
    InProcessRun.Result first = InProcessRun.run(TASK, runDir("corrupt"), byRank, schedule, FaultPlan.NONE);
    assertEquals(10, first.completed(0).stepsDone());
    for (long step : List.of(5L, 10L)) {
      Path weights = tmp.resolve("corrupt/checkpoint-" + step + "/" + SyntheticRegressionTask.WEIGHTS);
      byte[] bytes = Files.readAllBytes(weights);
      bytes[17] ^= 1;
      Files.write(weights, bytes);
    }

    InProcessRun.Result stopped = InProcessRun.run(TASK, runDir("corrupt"), byRank, schedule, FaultPlan.NONE);
    Throwable e = stopped.error(0);
    assertInstanceOf(NonRetryableTrainingException.class, e, String.valueOf(e));
    assertTrue(e.getMessage().contains("holds 2 committed checkpoint(s) and none verifies"), e.getMessage());
    assertTrue(e.getMessage().contains("checkpoint-10/" + SyntheticRegressionTask.WEIGHTS + " is corrupt"),
        e.getMessage());
    assertTrue(e.getMessage().contains("checkpoint-5/"), e.getMessage());
    assertTrue(stopped.error(1) != null, "rank 1 does not train on alone");
    assertTrue(stopped.channels().get(0).steps.isEmpty(), "no step was taken");
    assertEquals(List.of(5L, 10L), new CheckpointStore(Storage.local(), runDir("corrupt"), null).committedSteps(),
        "the evidence stays");

    InProcessRun.Result restarted = InProcessRun.run(TASK, runDir("corrupt"), byRank, schedule, FaultPlan.NONE,
        InProcessRun.RING, true);
    assertEquals(10, restarted.completed(1).stepsDone());
    assertEquals(List.of("started 0", "finished 10"), restarted.channels().get(0).events);
    assertEquals(clean.completed(0).checksum(), restarted.completed(0).checksum());
  }

  /** A task of attempt 1 still running after the driver moved the lease to attempt 2 commits nothing. */
  @Test
  void aStragglerOfAnEarlierAttemptIsFencedOutOfCommitting() throws Exception {
    ShardPlan plan = shards(1);
    String dir = runDir("fenced");
    Storage storage = Storage.local();
    TrainingSchedule schedule = new TrainingSchedule(10, 1, 0, 5, 5);
    try (io.sparkdpo.io.FolderLease lease = io.sparkdpo.io.FolderLease.acquire(storage, dir, "train-fence",
        Duration.ofSeconds(60))) {
      lease.beginAttempt(2);
      WorkerContext straggler = new WorkerContext(0, 1, 1, "train-fence", dir, plan.train().get(0),
          plan.eval().get(0), "cpu", storage, new LocalAllReduce(), new RecordingChannel(),
          new FaultInjector(FaultPlan.NONE, 0, storage, dir), schedule, null, true, false);
      Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
          () -> new WorkerLoop(straggler, TASK, () -> { }).run());
      assertInstanceOf(io.sparkdpo.io.FolderLease.LeaseException.class, e, String.valueOf(e));
      assertTrue(e.getMessage().contains("attempt 1 of run train-fence may not commit checkpoint step 5"),
          e.getMessage());
      assertFalse(TASK.retryable(e), "a fenced task is not worth a resubmission");
      assertTrue(new CheckpointStore(storage, dir, null).committedSteps().isEmpty());

      WorkerContext current = new WorkerContext(0, 1, 2, "train-fence", dir, plan.train().get(0),
          plan.eval().get(0), "cpu", storage, new LocalAllReduce(), new RecordingChannel(),
          new FaultInjector(FaultPlan.NONE, 0, storage, dir), schedule, null, true, false);
      assertEquals(10, new WorkerLoop(current, TASK, () -> { }).run().stepsDone());
      assertEquals(List.of(5L, 10L), new CheckpointStore(storage, dir, null).committedSteps());
    }
  }

  /**
   * Rank 1 reads the checkpoint through a host that flips a bit: it fails naming the file before it builds its
   * replica (a model loader reads its files by path, past the checkpoint's checksums), though rank 0 verified it.
   */
  @Test
  void everyRankVerifiesTheCheckpointItResumesFromBeforeLoadingIt() throws Exception {
    ShardPlan plan = shards(2);
    String dir = runDir("flipped");
    TrainingSchedule schedule = new TrainingSchedule(10, 1, 0, 5, 5);
    InProcessRun.Result first = InProcessRun.run(TASK, dir, plan, schedule, FaultPlan.NONE);
    assertEquals(10, first.completed(0).stepsDone());
    new CheckpointStore(Storage.local(), dir, null).open(10).verify(); // intact on disk

    org.apache.hadoop.conf.Configuration flipping = new org.apache.hadoop.conf.Configuration();
    flipping.set("fs.file.impl", FlippingLocalFileSystem.class.getName());
    flipping.setBoolean("fs.file.impl.disable.cache", true);
    java.util.Set<Integer> started = java.util.concurrent.ConcurrentHashMap.newKeySet();
    WorkerTask recording = new WorkerTask() {
      @Override
      public Replica start(WorkerContext context, Optional<Checkpoint> resume) throws Exception {
        started.add(context.rank());
        return TASK.start(context, resume);
      }

      @Override
      public boolean needsOwnJvm() {
        return false;
      }
    };
    try (InProcessRing ring = InProcessRing.connect(2, InProcessRun.RING)) {
      List<InProcessRing.Outcome<WorkerLoop.Completed>> outcomes = ring.outcomes(group -> {
        int rank = group.rank();
        Storage storage = rank == 1 ? new Storage(flipping) : Storage.local();
        WorkerContext ctx = new WorkerContext(rank, 2, 1, "in-process", dir, plan.train().get(rank),
            plan.eval().get(rank), "cpu", storage, group, new RecordingChannel(),
            new FaultInjector(FaultPlan.NONE, rank, storage, dir), schedule, null);
        try {
          return new WorkerLoop(ctx, recording, () -> { }).run();
        } catch (Exception | Error e) {
          group.close();
          throw e;
        }
      }, 60);
      Throwable e = outcomes.get(1).error();
      assertInstanceOf(io.sparkdpo.train.CheckpointException.class, e, String.valueOf(e));
      assertTrue(e.getMessage().contains("checkpoint-10/" + SyntheticRegressionTask.WEIGHTS + " is corrupt"),
          e.getMessage());
      assertFalse(started.contains(1), "rank 1 did not build a replica from what it read");
    }
  }

  @Test
  void aReplicaThatDriftsIsCaughtBeforeTheNextCheckpoint() throws Exception {
    ShardPlan byRank = shards(2);
    // Checksums only before saves and at the end: the drift at step 6 must stop the save of step 7.
    TrainingSchedule schedule = new TrainingSchedule(14, 1, 0, 7, 0);
    InProcessRun.Result run = InProcessRun.run(TASK.divergingAt(1, 6), runDir("drift"), byRank, schedule,
        FaultPlan.NONE);
    for (int r = 0; r < 2; r++) {
      ReplicaDivergenceException e = assertInstanceOf(ReplicaDivergenceException.class, run.error(r));
      assertTrue(e.getMessage().startsWith("replicas diverged after step 7: rank 0 hold "), e.getMessage());
      assertTrue(e.getMessage().contains("; rank 1 hold "), e.getMessage());
      assertFalse(TASK.retryable(e), "divergence must not be retried");
    }
    assertTrue(new CheckpointStore(Storage.local(), runDir("drift"), null).committedSteps().isEmpty());
  }

  @Test
  void replicasThatStartFromDifferentParametersAreRefusedBeforeTheFirstStep() throws Exception {
    WorkerTask unequalStart = (context, resume) -> new Replica() {
      @Override
      public long stepsDone() {
        return 0;
      }

      @Override
      public LocalMetrics trainStep(long step) {
        throw new AssertionError("no step may run on replicas that differ");
      }

      @Override
      public long parameterChecksum() {
        return context.rank() == 2 ? 0xBADL : 0x600DL;
      }

      @Override
      public Map<String, io.sparkdpo.train.PayloadWriter> checkpoint(long step, List<byte[]> rankStates) {
        throw new AssertionError("no checkpoint either");
      }

      @Override
      public void close() {}
    };
    ShardPlan byRank = ShardPlan.of(List.of("a", "b", "c"), List.of(), 3);
    InProcessRun.Result run = InProcessRun.run(unequalStart, runDir("start"), byRank,
        new TrainingSchedule(3, 1, 0, 0, 0), FaultPlan.NONE);
    for (int r = 0; r < 3; r++) {
      ReplicaDivergenceException e = assertInstanceOf(ReplicaDivergenceException.class, run.error(r));
      assertTrue(e.getMessage().startsWith("replicas diverged after step 0: ranks 0, 1 hold 000000000000600d; "
          + "rank 2 hold 0000000000000bad."), e.getMessage());
    }
  }

  /** A 2 s I/O timeout, far below how long the slow checkpoint takes. */
  private static final RingOptions SHORT_IO = InProcessRun.RING.withIoTimeout(Duration.ofSeconds(2))
      .withRankZeroTimeout(Duration.ofSeconds(60));

  @Test
  void aCheckpointThatTakesLongerThanTheIoTimeoutCompletesTheRun() throws Exception {
    TrainingSchedule schedule = new TrainingSchedule(4, 1, 0, 2, 0);
    SlowTask slowSave = new SlowTask(TASK, 5_000, -1, 0, 0);
    InProcessRun.Result run = InProcessRun.run(slowSave, runDir("slow-save"), shards(2), schedule, FaultPlan.NONE,
        SHORT_IO);
    assertEquals(4, run.completed(0).stepsDone());
    assertEquals(run.completed(0).checksum(), run.completed(1).checksum());
    assertEquals(List.of(2L, 4L), new CheckpointStore(Storage.local(), runDir("slow-save"), null).committedSteps());
    assertTrue(run.outcomes().get(1).elapsedMillis() >= 10_000, "rank 1 waited for both saves: "
        + run.outcomes().get(1).elapsedMillis() + " ms");
  }

  @Test
  void aRankThatStopsRespondingOutsideASaveStillFailsWithinTheIoTimeout() throws Exception {
    TrainingSchedule schedule = new TrainingSchedule(4, 1, 0, 0, 0);
    SlowTask hangs = new SlowTask(TASK, 0, 1, 2, 6_000);
    InProcessRun.Result run = InProcessRun.run(hangs, runDir("hang"), shards(2), schedule, FaultPlan.NONE,
        SHORT_IO);
    CollectiveException e = assertInstanceOf(CollectiveException.class, run.error(0), String.valueOf(run.error(0)));
    assertTrue(e.getMessage().contains("for 2000 ms"), e.getMessage());
    assertTrue(run.outcomes().get(0).elapsedMillis() < 5_000, "rank 0 failed only after "
        + run.outcomes().get(0).elapsedMillis() + " ms, rank 1 hung for 6000");
  }

  /** The synthetic trainer with a checkpoint that takes a while, and optionally one rank that hangs at one step. */
  private static final class SlowTask implements WorkerTask {
    private static final long serialVersionUID = 1L;
    private final SyntheticRegressionTask inner;
    private final long checkpointMillis;
    private final int hangRank;
    private final long hangStep;
    private final long hangMillis;

    SlowTask(SyntheticRegressionTask inner, long checkpointMillis, int hangRank, long hangStep, long hangMillis) {
      this.inner = inner;
      this.checkpointMillis = checkpointMillis;
      this.hangRank = hangRank;
      this.hangStep = hangStep;
      this.hangMillis = hangMillis;
    }

    @Override
    public boolean needsOwnJvm() {
      return false;
    }

    @Override
    public Replica start(WorkerContext context, Optional<Checkpoint> resume) {
      Replica replica = inner.start(context, resume);
      return new Replica() {
        @Override
        public long stepsDone() {
          return replica.stepsDone();
        }

        @Override
        public LocalMetrics trainStep(long step) throws Exception {
          if (context.rank() == hangRank && step == hangStep) {
            Thread.sleep(hangMillis);
          }
          return replica.trainStep(step);
        }

        @Override
        public long parameterChecksum() {
          return replica.parameterChecksum();
        }

        @Override
        public byte[] rankState(long step) throws Exception {
          return replica.rankState(step);
        }

        @Override
        public Map<String, PayloadWriter> checkpoint(long step, List<byte[]> rankStates) throws Exception {
          Thread.sleep(checkpointMillis);
          return replica.checkpoint(step, rankStates);
        }

        @Override
        public void close() {
          replica.close();
        }
      };
    }
  }
}
