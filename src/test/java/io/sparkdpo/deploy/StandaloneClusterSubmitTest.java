package io.sparkdpo.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.StandaloneCluster;
import io.sparkdpo.testing.StandaloneCluster.Submission;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
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
    // the cluster's secret and what only a single-host test needs.
    // The cluster's secret goes in the properties file, as deploy/README.md tells operators; the script refuses to
    // submit without it.
    Path props = cluster.directory().resolve("test-spark-defaults.conf");
    Files.writeString(props, Files.readString(cluster.securityProperties()) + String.join("\n",
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
   * Issue 8's end-to-end check, the pipeline the Airflow DAG runs: {@code prepare} of the 50 sample pairs into one
   * training shard per replica, {@code reference} (log-probs of the built-in tiny model on the executors), then a
   * short {@code train --workers 2} on the referenced folder, each submitted to this cluster. Two Workers of one
   * core each give two executors of one core: one training task per executor JVM.
   */
  @Test
  @Timeout(value = 600, unit = TimeUnit.SECONDS) // three submissions; with authentication and encryption on
  void preparesAndTrainsWithTwoWorkersEndToEnd() throws Exception {
    Path work = Files.createDirectories(cluster.directory().resolve("end-to-end"));
    Path input = Path.of(System.getProperty("project.basedir")).resolve("sample-data/preferences/trl-sample.jsonl");
    Path prepared = work.resolve("prepared");
    Path run = work.resolve("run");

    Submission prepare = cluster.submit("e2e-prepare", SUBMIT_TIMEOUT, Map.of(),
        trainingStageSubmitArgs("prepare", "--input", input.toString(), "--output", prepared.toString(),
            "--set", "train.workers=2").toArray(String[]::new));
    assertEquals(0, prepare.exitCode(), prepare.stdout() + "\n" + prepare.stderrTail());
    JsonNode manifest = new ObjectMapper().readTree(prepared.resolve("manifest.json").toFile());
    JsonNode counts = manifest.path("counts");
    assertEquals(50, counts.path("read").asInt(), manifest.toString());
    assertEquals(50, counts.path("kept").asInt() + counts.path("quarantined").asInt(), counts.toString());
    JsonNode train = manifest.path("splits").path("train");
    JsonNode eval = manifest.path("splits").path("eval");
    assertEquals(counts.path("kept").asInt(), train.path("rows").asInt() + eval.path("rows").asInt(),
        counts.toString());
    assertEquals(2, train.path("shards").size(), "one training shard per worker: " + train);
    for (JsonNode shard : train.path("shards")) {
      assertTrue(shard.path("rows").asInt() > 0, shard.toString());
      assertEquals(shard.path("bytes").asLong(), Files.size(prepared.resolve(shard.path("file").asText())),
          shard.toString());
    }
    assertTrue(prepare.stdout().contains("prepare: read 50 rows"), prepare.stdout());

    Path referenced = work.resolve("referenced");
    Submission reference = cluster.submit("e2e-reference", SUBMIT_TIMEOUT, Map.of(),
        trainingStageSubmitArgs("reference", "--data", prepared.toString(), "--model", "builtin:tiny",
            "--output", referenced.toString()).toArray(String[]::new));
    assertEquals(0, reference.exitCode(), reference.stdout() + "\n" + reference.stderrTail());
    JsonNode referencedManifest = new ObjectMapper().readTree(referenced.resolve("manifest.json").toFile());
    assertEquals("reference", referencedManifest.path("stage").asText());
    assertEquals(counts.path("kept").asInt(), referencedManifest.path("reference").path("pairs").asInt(),
        referencedManifest.path("reference").toString());

    // The project's log configuration (INFO for io.sparkdpo), as an operator would use it: the ranks log their hello.
    Path logConfig = Path.of(System.getProperty("project.basedir")).resolve("conf/log4j2.properties");
    Submission training = cluster.submit("e2e-train", SUBMIT_TIMEOUT,
        Map.of("LOG4J_CONFIGURATION_FILE", logConfig.toString()),
        trainingStageSubmitArgs("train", "--data", referenced.toString(), "--output", run.toString(),
            "--model", "builtin:tiny", "--workers", "2", "--reference-mode", "precomputed", "--max-steps", "4",
            "--set", "train.per_device_train_batch_size=4", "--set", "train.learning_rate=0.001",
            "--set", "train.logging_steps=1", "--set", "train.save_steps=2").toArray(String[]::new));
    String log = Files.readString(training.stderrLog());
    assertEquals(0, training.exitCode(), training.stdout() + "\n" + training.stderrTail());
    assertTrue(training.stdout().contains("train: 4 steps done in 1 attempt(s)"), training.stdout());

    // Both ranks ran, each in an executor JVM of its own.
    Matcher hello = Pattern.compile("attempt 1: rank (\\d) runs in executor (\\S+) on \\S+ \\(pid (\\d+)")
        .matcher(log);
    Map<Integer, String> pidOfRank = new HashMap<>();
    while (hello.find()) {
      pidOfRank.put(Integer.parseInt(hello.group(1)), hello.group(3));
    }
    assertEquals(Set.of(0, 1), pidOfRank.keySet(), "ranks that said hello:\n" + training.stderrTail());
    assertEquals(2, new HashSet<>(pidOfRank.values()).size(), "two ranks in one executor JVM: " + pidOfRank);

    List<Map<String, Object>> records = MetricsLog.readAll(Storage.local(), run.toString());
    List<Long> steps = new ArrayList<>();
    for (Map<String, Object> r : records) {
      if (r.containsKey(MetricNames.LOSS)) {
        steps.add(((Number) r.get(MetricNames.STEP)).longValue());
        double loss = ((Number) r.get(MetricNames.LOSS)).doubleValue();
        assertTrue(Double.isFinite(loss) && loss > 0, "loss " + loss + " in " + r);
      }
    }
    assertEquals(List.of(1L, 2L, 3L, 4L), steps, records.toString());
    assertTrue(records.stream().anyMatch(r -> r.containsKey(MetricNames.EVAL + MetricNames.LOSS)),
        "a final evaluation: " + records);
    assertEquals(List.of(2L, 4L), new CheckpointStore(Storage.local(), run.toString(), null).committedSteps());
    for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) {
      assertTrue(Files.size(run.resolve("model").resolve(f)) > 0, f);
    }
  }
}
