package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.distributed.ClusterCheck.TaskReport;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The verdict of cluster-check; its Spark side runs for real in StandaloneClusterSubmitTest. */
class ClusterCheckTest {
  private static TaskReport report(int rank, String host, long pid, List<String> gpus, int engineGpus, double sum,
      int peers) {
    List<String> heard = java.util.stream.IntStream.range(0, peers).mapToObj(i -> "p" + i).toList();
    return new TaskReport(rank, host, pid, "e" + rank, 4, gpus, "PyTorch", "2.7.1", engineGpus, "cpu()", sum,
        heard, null);
  }

  @Test
  void healthyCpuClusterHasNoProblems() {
    List<TaskReport> r = List.of(report(0, "a", 10, List.of(), 0, 5050, 2), report(1, "b", 10, List.of(), 0, 5050, 2));
    assertEquals(List.of(), ClusterCheck.problems(r, 2, false));
  }

  @Test
  void twoTasksInOneExecutorJvmAreReportedWithTheSettingToFix() {
    List<TaskReport> r = List.of(report(0, "a", 10, List.of(), 0, 5050, 2), report(1, "a", 10, List.of(), 0, 5050, 2));
    List<String> p = ClusterCheck.problems(r, 2, false);
    assertEquals(1, p.size(), p.toString());
    assertTrue(p.get(0).contains("spark.task.cpus = spark.executor.cores"), p.get(0));
  }

  @Test
  void gpuProblemsWrongSumsMissingPeersAndErrorsAreEachReported() {
    List<TaskReport> r = List.of(
        report(0, "a", 10, List.of("0"), 1, 5050, 3),
        report(1, "a", 11, List.of("0"), 1, 5050, 3),   // same GPU as rank 0 on host a
        report(2, "b", 12, List.of(), 0, 4000, 2),      // no GPU, CPU natives, wrong sum, one peer missing
        new TaskReport(3, "c", 13, "e3", 4, List.of("0"), null, null, -1, null, Double.NaN, List.of(),
            "UnsatisfiedLinkError: libtorch"));
    List<String> p = ClusterCheck.problems(r, 3, true);
    assertTrue(p.get(0).startsWith("expected 3 task reports, got 4"), p.toString());
    assertTrue(p.stream().anyMatch(s -> s.equals("rank 1 shares GPU 0 on a")), p.toString());
    assertTrue(p.stream().anyMatch(s -> s.equals("rank 2 was given no GPU")), p.toString());
    assertTrue(p.stream().anyMatch(s -> s.startsWith("rank 2: the engine sees no GPU")), p.toString());
    assertTrue(p.stream().anyMatch(s -> s.equals("rank 2: the engine computed 4000.0 instead of 5050")), p.toString());
    assertTrue(p.stream().anyMatch(s -> s.equals("rank 2 heard from 2 of 3 tasks")), p.toString());
    assertTrue(p.stream().anyMatch(s -> s.equals("rank 3 on c: UnsatisfiedLinkError: libtorch")), p.toString());
    assertEquals(7, p.size(), p.toString());
  }
}
