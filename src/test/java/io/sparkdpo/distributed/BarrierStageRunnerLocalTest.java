package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.FaultInjectionSettings.Kind;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The barrier stage with both ranks in one JVM ({@code local[2]}): fine for a task without DJL's per-JVM
 * collector, refused for one that needs its own JVM.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BarrierStageRunnerLocalTest {
  private static final SyntheticRegressionTask SHARED_JVM_TASK = SyntheticRegressionTask.standard(false);
  private static List<List<String>> shards;

  @TempDir
  static Path tmp;

  @BeforeAll
  static void writeShards() {
    shards = SyntheticRunSpecs.writeShards(tmp.resolve("data"), SHARED_JVM_TASK);
  }

  private static SparkSession spark() {
    return SharedSpark.get();
  }

  private static String runDir(String name) {
    return tmp.resolve(name).toUri().toString();
  }

  @Test
  void twoRanksInOneJvmGiveBitForBitTheResultOfTheSameRingWithoutSpark() throws Exception {
    SyntheticRunSpecs.CapturedProgress progress = new SyntheticRunSpecs.CapturedProgress();
    List<String> descriptions = new CopyOnWriteArrayList<>();
    SparkListener jobs = new SparkListener() {
      @Override
      public void onJobStart(SparkListenerJobStart start) {
        if ("spark-dpo-local-w2".equals(start.properties().getProperty("spark.jobGroup.id"))) {
          descriptions.add(start.properties().getProperty("spark.job.description"));
        }
      }
    };
    spark().sparkContext().addSparkListener(jobs);
    RunOutcome outcome;
    try {
      outcome = new BarrierStageRunner(spark(),
          SyntheticRunSpecs.spec(tmp, "local-w2", shards, 2, FaultPlan.NONE, 1), SHARED_JVM_TASK)
          .withProgress(progress).run();
      for (int i = 0; i < 100 && descriptions.isEmpty(); i++) {
        Thread.sleep(50); // listener events arrive asynchronously
      }
    } finally {
      spark().sparkContext().removeSparkListener(jobs);
    }
    assertEquals(List.of("synthetic: step 0/20, attempt 1 of 1, 2 workers"), descriptions);
    InProcessRun.Result plain = InProcessRun.run(SHARED_JVM_TASK, runDir("plain-w2"),
        SyntheticRunSpecs.plan(shards, 2), SyntheticRunSpecs.SCHEDULE, FaultPlan.NONE);

    assertEquals(20, outcome.stepsDone());
    assertEquals(List.of(0, 1), outcome.reports().stream().map(WorkerReport::rank).toList());
    assertEquals(ProcessHandle.current().pid(), outcome.reports().get(1).pid());
    assertEquals(plain.completed(0).checksum(), outcome.checksum());
    assertArrayEquals(SyntheticRegressionTask.weightsAt(runDir("plain-w2"), 20),
        SyntheticRegressionTask.weightsAt(runDir("local-w2"), 20));

    // The driver logged what rank 0 streamed: every step (logging_steps 1) and both evaluations.
    List<Map<String, Object>> records = MetricsLog.readAll(Storage.local(), runDir("local-w2"));
    assertEquals(22, records.size(), records.toString());
    Map<String, Double> step7 = plain.channels().get(0).steps.get(7L);
    Map<String, Object> logged7 = records.stream().filter(r -> ((Number) r.get(MetricNames.STEP)).longValue() == 7)
        .findFirst().orElseThrow();
    assertEquals(step7.get("loss"), ((Number) logged7.get("loss")).doubleValue());
    assertEquals(plain.channels().get(0).evals.get(20L).get("eval/loss"),
        ((Number) records.get(records.size() - 1).get("eval/loss")).doubleValue());
    assertTrue(progress.text().contains("] 20/20"), progress.text());
  }

  @Test
  void aFailedAttemptIsResubmittedFromTheNewestCheckpoint() throws Exception {
    RunOutcome outcome = new BarrierStageRunner(spark(),
        SyntheticRunSpecs.spec(tmp, "local-fault", shards, 2, new FaultPlan(Kind.EXCEPTION, 0, 13), 2),
        SHARED_JVM_TASK).run();
    InProcessRun.Result plain = InProcessRun.run(SHARED_JVM_TASK, runDir("plain-ref"),
        SyntheticRunSpecs.plan(shards, 2), SyntheticRunSpecs.SCHEDULE, FaultPlan.NONE);

    assertEquals(2, outcome.attempts());
    assertTrue(outcome.failures().get(0).startsWith("attempt 1 failed after step 12: rank 0 at step 13: "
        + "InjectedFault"), outcome.failures().toString());
    assertEquals(plain.completed(0).checksum(), outcome.checksum());
    assertFalse(java.nio.file.Files.exists(tmp.resolve("local-fault").resolve(io.sparkdpo.io.FolderLease.FILE)),
        "the runner's own lease is released at the end");
  }

  /** Two drivers on one output folder: the second is refused before any Spark job, naming the holder. */
  @Test
  void aSecondLiveWriterOfTheRunFolderIsRefusedBeforeAnyJob() {
    String dir = runDir("leased");
    try (io.sparkdpo.io.FolderLease other = io.sparkdpo.io.FolderLease.acquire(Storage.local(), dir, "train-first",
        java.time.Duration.ofSeconds(60))) {
      io.sparkdpo.io.FolderLease.LeaseException e = assertThrows(io.sparkdpo.io.FolderLease.LeaseException.class,
          () -> new BarrierStageRunner(spark(), SyntheticRunSpecs.spec(tmp, "leased", shards, 2, FaultPlan.NONE, 2),
              SHARED_JVM_TASK).run());
      assertTrue(e.getMessage().contains("leased/ is being written by run train-first"), e.getMessage());
      assertTrue(e.getMessage().contains("pid " + ProcessHandle.current().pid()), e.getMessage());
      assertFalse(java.nio.file.Files.exists(tmp.resolve("leased/checkpoints")), "nothing was written");
      assertEquals(0, spark().sparkContext().statusTracker().getJobIdsForGroup("spark-dpo-leased").length);
    }
  }

  @Test
  void givesUpAfterMaxAttemptsNamingEveryFailure() {
    // A task that always fails in start(): retryable, so the runner tries max_attempts times.
    WorkerTask broken = new BrokenTask();
    TrainingFailedException e = assertThrows(TrainingFailedException.class, () -> new BarrierStageRunner(spark(),
        SyntheticRunSpecs.spec(tmp, "broken", shards, 2, FaultPlan.NONE, 2), broken).run());
    assertTrue(e.retryable());
    assertEquals(2, e.failures().size());
    assertTrue(e.getMessage().startsWith("gave up after 2 attempts (max_attempts): attempt 1 failed before"
        + " training: rank "), e.getMessage());
    assertTrue(e.getMessage().contains("IllegalStateException: cannot load the model (test)"), e.getMessage());
  }

  @Test
  void refusesRanksThatNeedTheirOwnJvmOnALocalMasterBeforeSubmittingAnything() {
    long jobsBefore = spark().sparkContext().statusTracker().getJobIdsForGroup("spark-dpo-own-jvm").length;
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> new BarrierStageRunner(spark(),
        SyntheticRunSpecs.spec(tmp, "own-jvm", shards, 2, FaultPlan.NONE, 3),
        SyntheticRegressionTask.standard(true)).run());
    assertTrue(e.getMessage().startsWith("workers=2 needs 2 executor JVMs, one per rank"), e.getMessage());
    assertEquals(jobsBefore, spark().sparkContext().statusTracker().getJobIdsForGroup("spark-dpo-own-jvm").length);
  }

  @Test
  void refusesAnExitFaultThatWouldHaltTheDriver() {
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> new BarrierStageRunner(spark(),
        SyntheticRunSpecs.spec(tmp, "exit-local", shards, 2, new FaultPlan(Kind.EXIT, 1, 3), 3), SHARED_JVM_TASK)
        .run());
    assertTrue(e.getMessage().contains("runs the tasks in the driver JVM"), e.getMessage());
  }

  /** Fails while building its replica, on every rank, every time. */
  private static final class BrokenTask implements WorkerTask {
    private static final long serialVersionUID = 1L;

    @Override
    public boolean needsOwnJvm() {
      return false;
    }

    @Override
    public Replica start(WorkerContext context, java.util.Optional<io.sparkdpo.train.Checkpoint> resume) {
      throw new IllegalStateException("cannot load the model (test)");
    }
  }
}
