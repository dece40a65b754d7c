package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.FaultInjectionSettings.Kind;
import io.sparkdpo.testing.LocalClusterSpark;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The barrier stage across processes: {@code local-cluster[2,2,1024]}, two executor JVMs of two cores each, so
 * one rank per executor needs the stage-level task profile (all of an executor's cores per task), as the DJL
 * trainer will. One cluster for the whole class: executors take 10-20 s to start.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class BarrierStageRunnerClusterTest {
  private static final SyntheticRegressionTask TASK = SyntheticRegressionTask.standard(true);
  private static LocalClusterSpark cluster;
  private static List<List<String>> shards;
  private static RunOutcome cleanTwoWorkers;

  @TempDir
  static Path tmp;

  @BeforeAll
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  static void startCluster() {
    cluster = LocalClusterSpark.start(2, 2, 1024, Map.of());
    shards = SyntheticRunSpecs.writeShards(tmp.resolve("data"), TASK);
  }

  @AfterAll
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  static void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  private static RunOutcome run(String name, int workers, SyntheticRegressionTask task, FaultPlan faults) {
    return new BarrierStageRunner(cluster.session(),
        SyntheticRunSpecs.spec(tmp, name, shards, workers, faults, 3), task).run();
  }

  private static synchronized RunOutcome cleanTwoWorkers() {
    if (cleanTwoWorkers == null) {
      cleanTwoWorkers = run("clean-w2", 2, TASK, FaultPlan.NONE);
    }
    return cleanTwoWorkers;
  }

  private static String runDir(String name) {
    return tmp.resolve(name).toUri().toString();
  }

  @Test
  void twoWorkersInTwoExecutorsMatchOneWorkerWithTheSameGlobalBatch() {
    SyntheticRunSpecs.CapturedProgress progress = new SyntheticRunSpecs.CapturedProgress();
    RunOutcome one = new BarrierStageRunner(cluster.session(),
        SyntheticRunSpecs.spec(tmp, "clean-w1", shards, 1, FaultPlan.NONE, 3), TASK).withProgress(progress).run();
    RunOutcome two = cleanTwoWorkers();

    assertEquals(1, one.attempts());
    assertEquals(1, two.attempts());
    Set<Long> pids = two.reports().stream().map(WorkerReport::pid).collect(Collectors.toSet());
    assertEquals(2, pids.size(), "one rank per executor JVM: " + two.reports());
    assertFalse(pids.contains(ProcessHandle.current().pid()), "a rank ran in the driver");

    Map<Long, Double> lossOne = SyntheticRunSpecs.losses(runDir("clean-w1"));
    Map<Long, Double> lossTwo = SyntheticRunSpecs.losses(runDir("clean-w2"));
    assertEquals(20, lossOne.size());
    assertEquals(lossOne.keySet(), lossTwo.keySet());
    for (long s = 1; s <= 20; s++) {
      assertEquals(lossOne.get(s), lossTwo.get(s), 1e-5 * Math.max(1, lossOne.get(s)), "loss at step " + s);
    }
    assertTrue(lossOne.get(20L) < 0.5 * lossOne.get(1L), lossOne.toString());
    float[] w1 = SyntheticRegressionTask.weightsAt(runDir("clean-w1"), 20);
    float[] w2 = SyntheticRegressionTask.weightsAt(runDir("clean-w2"), 20);
    for (int i = 0; i < w1.length; i++) {
      assertEquals(w1[i], w2[i], 1e-5, "parameter " + i);
    }
    assertTrue(progress.text().contains("synthetic 100.0% [####################] 20/20"), progress.text());
    assertTrue(Files.exists(tmp.resolve("clean-w2/metrics.jsonl")));
  }

  @Test
  void anExceptionInjectedIntoRankOneIsRecoveredFromTheLastCheckpointWithTheSameBits() {
    RunOutcome faulty = run("exception", 2, TASK, new FaultPlan(Kind.EXCEPTION, 1, 7));

    assertEquals(2, faulty.attempts());
    String why = faulty.failures().get(0);
    assertTrue(why.startsWith("attempt 1 failed after step 6: rank 1 at step 7: InjectedFault: injected fault"),
        why);
    assertEquals(cleanTwoWorkers().checksum(), faulty.checksum());
    assertArrayEquals(SyntheticRegressionTask.weightsAt(runDir("clean-w2"), 20),
        SyntheticRegressionTask.weightsAt(runDir("exception"), 20));
    assertEquals(SyntheticRunSpecs.losses(runDir("clean-w2")), SyntheticRunSpecs.losses(runDir("exception")));
  }

  @Test
  void anExecutorThatDiesMidRunIsReplacedAndTheRunEndsWithTheSameBits() {
    Set<Long> before = cleanTwoWorkers().reports().stream().map(WorkerReport::pid).collect(Collectors.toSet());
    RunOutcome faulty = run("exit", 2, TASK, new FaultPlan(Kind.EXIT, 0, 12));

    assertEquals(2, faulty.attempts(), faulty.failures().toString());
    String why = faulty.failures().get(0);
    assertTrue(why.startsWith("attempt 1 failed after step 11: "), why);
    assertTrue(why.contains("rank 0 vanished without a report (executor lost)"), why);
    Set<Long> after = faulty.reports().stream().map(WorkerReport::pid).collect(Collectors.toSet());
    assertEquals(2, after.size());
    assertNotEquals(before, after, "the halted executor JVM was replaced");
    assertEquals(cleanTwoWorkers().checksum(), faulty.checksum());
    assertArrayEquals(SyntheticRegressionTask.weightsAt(runDir("clean-w2"), 20),
        SyntheticRegressionTask.weightsAt(runDir("exit"), 20));
  }

  @Test
  void replicasThatDivergeStopTheRunWithoutARetry() {
    TrainingFailedException e = assertThrows(TrainingFailedException.class,
        () -> run("diverge", 2, TASK.divergingAt(1, 6), FaultPlan.NONE));

    assertFalse(e.retryable());
    assertEquals(1, e.failures().size(), e.failures().toString());
    assertTrue(e.getMessage().contains("ReplicaDivergenceException: replicas diverged after step 8: rank 0 hold "),
        e.getMessage());
    assertTrue(e.getMessage().contains("; rank 1 hold "), e.getMessage());
    assertTrue(e.getMessage().endsWith("Not retryable: the run stops."), e.getMessage());
  }
}
