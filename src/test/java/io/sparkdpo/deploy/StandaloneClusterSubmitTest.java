package io.sparkdpo.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.testing.StandaloneCluster;
import io.sparkdpo.testing.StandaloneCluster.Submission;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The built application jar on a real standalone cluster (Master + 2 Workers, child processes on 127.0.0.1),
 * submitted with {@code SparkSubmit} exactly as {@code deploy/standalone/submit.sh} does. Spark's jars come from
 * the fake distribution only, so everything else the application needs must come from the jar.
 */
@Tag("appjar")
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class StandaloneClusterSubmitTest {
  private static final Duration SUBMIT_TIMEOUT = Duration.ofSeconds(240);
  private static StandaloneCluster cluster;

  @BeforeAll
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  static void startMasterAndTwoWorkers() {
    cluster = StandaloneCluster.start("submit-test", 2, 1, 1536);
  }

  @AfterAll
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  static void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  /** The settings a training stage needs (deploy/README.md), scaled to this machine. */
  private static List<String> trainingStageSubmitArgs(String command, String... commandArgs) {
    List<String> args = new ArrayList<>(List.of(
        "--deploy-mode", "client",
        "--class", "io.sparkdpo.cli.Main",
        "--conf", "spark.executor.cores=1",
        "--conf", "spark.task.cpus=1",
        "--conf", "spark.executor.memory=1g",
        "--conf", "spark.cores.max=2",
        "--conf", "spark.dynamicAllocation.enabled=false",
        "--conf", "spark.scheduler.barrier.maxConcurrentTasksCheck.interval=1s",
        "--conf", "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures=60",
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.executorEnv.DJL_OFFLINE=true",
        "--conf", "spark.executor.extraJavaOptions=-Dai.djl.offline=true",
        AppJar.path().toString(),
        command));
    args.addAll(List.of(commandArgs));
    return args;
  }

  @Test
  void sparkSubmitRunsTheConfigCommandFromTheAppJarWithRelocatedYaml() {
    Submission s = cluster.submit("config", SUBMIT_TIMEOUT, Map.of(),
        trainingStageSubmitArgs("config", "--set", "prepare.max_length=256").toArray(String[]::new));
    assertEquals(0, s.exitCode(), s.stderrTail());
    assertTrue(s.stdout().contains("max_length: 256"), s.stdout());
  }

  @Test
  void submitScriptRunsClusterCheckWithOneBarrierTaskPerExecutorAndTheEngineFromTheAppJar() throws Exception {
    // deploy/standalone/submit.sh, as an operator runs it, scaled to this machine; the properties file carries
    // what only a single-host test needs.
    Path props = cluster.directory().resolve("test-spark-defaults.conf");
    Files.writeString(props, String.join("\n",
        "spark.driver.host 127.0.0.1",
        "spark.ui.enabled false",
        "spark.scheduler.barrier.maxConcurrentTasksCheck.interval 1s", ""));
    Path script = Path.of(System.getProperty("project.basedir")).resolve("deploy/standalone/submit.sh");
    Submission s = cluster.runCommand("script-cluster-check", SUBMIT_TIMEOUT, Map.of(
            "SPARK_DPO_JAR", AppJar.path().toString(),
            "SPARK_DPO_WORKERS", "2",
            "SPARK_DPO_EXECUTOR_CORES", "1",
            "SPARK_DPO_EXECUTOR_MEMORY", "1g",
            "SPARK_DPO_DRIVER_MEMORY", "1g",
            "SPARK_DPO_CONF_FILE", props.toString()),
        List.of("bash", script.toString(), "cluster-check", "--workers", "2"));
    assertEquals(0, s.exitCode(), s.stdout() + "\n" + s.stderrTail());

    ObjectMapper json = new ObjectMapper();
    Set<Long> pids = new HashSet<>();
    Set<Integer> ranks = new HashSet<>();
    for (String line : s.stdout().split("\n")) {
      if (line.startsWith("{")) {
        JsonNode r = json.readTree(line);
        pids.add(r.get("pid").asLong());
        ranks.add(r.get("rank").asInt());
        assertEquals(5050.0, r.get("checkSum").asDouble(), 1e-9, line);
        assertEquals("PyTorch", r.get("engine").asText(), line);
        assertEquals(1, r.get("cpus").asInt(), "spark.task.cpus = executor cores: " + line);
        assertEquals(2, r.get("peers").size(), line);
      }
    }
    assertEquals(Set.of(0, 1), ranks, s.stdout());
    assertEquals(2, pids.size(), "two ranks in one executor JVM: " + s.stdout());
    assertTrue(s.stdout().contains("OK: 2 barrier tasks in 2 executor JVMs"), s.stdout());
    JsonNode status = cluster.masterStatus();
    boolean seen = false;
    for (JsonNode app : status.path("completedapps")) {
      seen |= app.path("name").asText().equals("spark-dpo cluster-check");
    }
    assertTrue(seen, "the master has no completed 'spark-dpo cluster-check' application: " + status);
  }

  /**
   * Issue 8's end-to-end check: prepare, then a short train with 2 workers, submitted to this cluster. Enable once
   * the prepare and train commands exist (their branches are being written); fill in their flags from
   * `spark-dpo prepare --help` / `train --help`, then assert on the outputs: DIR/manifest.json counts and shard
   * files, run/metrics.jsonl with 2 workers' steps and a finite loss, run/checkpoints/step-N.
   */
  @Test
  @Disabled("prepare and train commands do not exist yet on this branch: enable when they are merged")
  void preparesAndTrainsWithTwoWorkersEndToEnd() {
    throw new UnsupportedOperationException("write when prepare and train exist");
  }
}
