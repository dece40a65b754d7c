package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigException;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.distributed.ClusterCheck;
import io.sparkdpo.distributed.ClusterCheck.TaskReport;
import io.sparkdpo.io.Json;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Checks, before a long training run, that the cluster can run one: see {@link ClusterCheck}. Prints one JSON
 * line per task and a verdict; exits 1 when something would stop or slow training.
 */
@Command(name = "cluster-check", mixinStandardHelpOptions = true,
    description = "Run W barrier tasks, one per executor, each loading the PyTorch engine from the application "
        + "jar on its assigned device; report what each saw and whether the cluster can train.")
public final class ClusterCheckCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Option(names = "--workers", paramLabel = "W", required = true,
      description = "Training replicas to check (barrier tasks; one executor each).")
  int workers;

  @Option(names = "--wait", paramLabel = "SECONDS", defaultValue = "120",
      description = "How long to wait for W executors to register (default: ${DEFAULT-VALUE}).")
  int waitSeconds;

  @Override
  public Integer call() throws InterruptedException {
    if (workers < 1) {
      throw new ConfigException("--workers must be at least 1 (got " + workers + ")");
    }
    JobConfig cfg = job.load(List.of());
    SparkSession spark = SparkSessions.create(cfg, "cluster-check");
    try {
      SparkConf conf = spark.sparkContext().getConf();
      boolean gpus = conf.contains("spark.task.resource.gpu.amount");
      // In local mode the driver JVM runs every task: nothing registers, and W > 1 shares one JVM (reported below).
      int registered = spark.sparkContext().isLocal() ? workers : awaitExecutors(spark, workers, waitSeconds);
      if (registered < workers) {
        System.out.println("FAIL: " + registered + " of " + workers + " executors registered within " + waitSeconds
            + " s: the cluster lacks free slots (cores, memory or GPUs) for " + workers + " executors");
        return 1;
      }
      List<TaskReport> reports = ClusterCheck.run(spark, workers, cfg.model().device());
      for (TaskReport r : reports) {
        System.out.println(Json.LINES.writeValueAsString(r));
      }
      List<String> problems = ClusterCheck.problems(reports, workers, gpus);
      problems.forEach(p -> System.out.println("FAIL: " + p));
      System.out.println(problems.isEmpty()
          ? "OK: " + workers + " barrier tasks in " + workers + " executor JVMs, engine "
              + reports.get(0).engine() + " " + reports.get(0).engineVersion() + " on " + reports.get(0).device()
          : "FAIL: " + problems.size() + " problem(s)");
      return problems.isEmpty() ? 0 : 1;
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    } finally {
      spark.stop();
    }
  }

  private static int awaitExecutors(SparkSession spark, int wanted, int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + seconds * 1_000_000_000L;
    int registered;
    // The status tracker lists the driver as well.
    while ((registered = spark.sparkContext().statusTracker().getExecutorInfos().length - 1) < wanted
        && System.nanoTime() < deadline) {
      Thread.sleep(250);
    }
    return registered;
  }
}
