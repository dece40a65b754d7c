package io.sparkdpo.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.Redaction;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The deploy/ scripts: syntax, the spark-submit command each builds (dry run), and the GPU discovery script. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DeployScriptsTest {
  private static final Path DIR = ProcessRun.projectDir();

  @TempDir
  Path tmp;

  private static List<Path> scripts() throws IOException {
    try (Stream<Path> s = Files.walk(DIR.resolve("deploy"))) {
      List<Path> out = s.filter(p -> p.toString().endsWith(".sh")).sorted().collect(Collectors.toList());
      out.add(DIR.resolve("bin/spark-dpo"));
      return out;
    }
  }

  /** Runs a submit script in dry-run mode and returns the spark-submit arguments it would run. */
  private List<String> dryRun(String script, Map<String, String> env, String... args) throws Exception {
    Map<String, String> e = new HashMap<>(env);
    if (script.contains("standalone") && !e.containsKey("SPARK_DPO_AUTHENTICATE")) {
      e.putIfAbsent("SPARK_DPO_CONF_FILE", clusterSecretFile().toString());
    }
    e.put("SPARK_DPO_DRY_RUN", "1");
    e.put("SPARK_DPO_JAR", "/jars/app.jar");
    e.putIfAbsent("SPARK_SUBMIT", "spark-submit");
    List<String> cmd = new ArrayList<>(List.of("bash", DIR.resolve(script).toString()));
    cmd.addAll(List.of(args));
    ProcessRun r = ProcessRun.run(tmp, e, cmd);
    assertEquals(0, r.exitCode(), r.output());
    // printf %q quoting: split on unescaped spaces, then unescape.
    List<String> words = new ArrayList<>();
    for (String w : r.output().trim().split("(?<!\\\\) ")) {
      words.add(w.replaceAll("\\\\(.)", "$1"));
    }
    return words;
  }

  private static final String CLUSTER_SECRET = "fake-cluster-secret-4711";

  /** A standalone cluster's shared secret, in a properties file as deploy/README.md says. */
  private Path clusterSecretFile() throws IOException {
    Path file = tmp.resolve("cluster-secret.conf");
    Files.writeString(file, "spark.authenticate.secret " + CLUSTER_SECRET + "\n");
    return file;
  }

  private static String conf(List<String> argv, String key) {
    for (int i = 0; i < argv.size() - 1; i++) {
      if (argv.get(i).equals("--conf") && argv.get(i + 1).startsWith(key + "=")) {
        return argv.get(i + 1).substring(key.length() + 1);
      }
    }
    return null;
  }

  @Test
  void everyScriptParsesAndPassesShellcheckWhereInstalled() throws Exception {
    boolean shellcheck = Files.isExecutable(Path.of("/usr/bin/shellcheck"));
    for (Path script : scripts()) {
      ProcessRun syntax = ProcessRun.run(DIR, Map.of(), List.of("bash", "-n", script.toString()));
      assertEquals(0, syntax.exitCode(), script + ": " + syntax.output());
      assertTrue(Files.isExecutable(script) || script.endsWith("common.sh"), script + " is not executable");
      if (shellcheck) {
        ProcessRun lint = ProcessRun.run(DIR, Map.of(), List.of("/usr/bin/shellcheck", "-x", script.toString()));
        assertEquals(0, lint.exitCode(), script + ": " + lint.output());
      }
    }
    System.out.println("deploy scripts: bash -n passed" + (shellcheck ? ", shellcheck passed" : "; shellcheck "
        + "not installed (apt-get install shellcheck) so not run"));
  }

  @Test
  void trainingStagesGetOneTaskPerExecutorAndNoDynamicAllocation() throws Exception {
    Map<String, String> env = Map.of("SPARK_MASTER", "spark://m:7077", "SPARK_DPO_WORKERS", "3",
        "SPARK_DPO_EXECUTOR_CORES", "6");
    List<String> train = dryRun("deploy/standalone/submit.sh", env, "train", "--config", "job.yaml");
    assertEquals("spark-submit", train.get(0));
    assertEquals("6", conf(train, "spark.executor.cores"));
    assertEquals("6", conf(train, "spark.task.cpus"));
    assertEquals("18", conf(train, "spark.cores.max"));
    assertEquals("false", conf(train, "spark.dynamicAllocation.enabled"));
    assertEquals("1", conf(train, "spark.task.maxFailures"));
    assertEquals(List.of("/jars/app.jar", "train", "--config", "job.yaml"), train.subList(train.size() - 4,
        train.size()));
    assertTrue(train.containsAll(List.of("--master", "spark://m:7077", "--class", "io.sparkdpo.cli.Main")));

    // Data stages keep many tasks per executor.
    List<String> prepare = dryRun("deploy/standalone/submit.sh", env, "prepare");
    assertEquals(null, conf(prepare, "spark.task.cpus"));
    assertEquals("6", conf(prepare, "spark.executor.cores"));
  }

  @Test
  void gpuAndEventLogSettingsAreAddedOnRequestAndNoCredentialIsEverPassed() throws Exception {
    List<String> argv = dryRun("deploy/standalone/submit.sh", Map.of("SPARK_MASTER", "spark://m:7077",
        "SPARK_DPO_GPUS", "1", "SPARK_DPO_EVENT_LOG_DIR", "s3a://b/events",
        "AWS_SECRET_ACCESS_KEY", "must-not-appear"), "train");
    assertEquals("1", conf(argv, "spark.executor.resource.gpu.amount"));
    assertEquals("1", conf(argv, "spark.task.resource.gpu.amount"));
    assertTrue(conf(argv, "spark.executor.resource.gpu.discoveryScript").endsWith("deploy/gpu/getGpusResources.sh"));
    assertEquals("s3a://b/events", conf(argv, "spark.eventLog.dir"));
    assertEquals("true", conf(argv, "spark.eventLog.enabled"));
    assertTrue(conf(argv, "spark.hadoop.fs.s3a.aws.credentials.provider").contains("IAMInstanceCredentialsProvider"));
    assertFalse(String.join(" ", argv).contains("must-not-appear"));
    assertFalse(String.join(" ", argv).matches("(?s).*fs\\.s3a\\.(access|secret)\\.key.*"));
  }

  @Test
  void everyScriptAuthenticatesEncryptsReapsStuckTasksAndRedactsCredentials() throws Exception {
    Map<String, List<String>> runs = Map.of(
        "standalone", dryRun("deploy/standalone/submit.sh", Map.of("SPARK_MASTER", "spark://m:7077"), "train"),
        "yarn", dryRun("deploy/yarn/submit.sh", Map.of("HADOOP_CONF_DIR", "/etc/hadoop"), "prepare"),
        "k8s", dryRun("deploy/k8s/submit.sh", Map.of("SPARK_K8S_MASTER", "k8s://https://api:6443",
            "SPARK_DPO_IMAGE", "reg/spark-dpo:1"), "reference"));
    runs.forEach((cluster, argv) -> {
      assertEquals("true", conf(argv, "spark.authenticate"), cluster);
      assertEquals("true", conf(argv, "spark.network.crypto.enabled"), cluster);
      assertEquals("true", conf(argv, "spark.task.reaper.enabled"), cluster);
      assertEquals("120s", conf(argv, "spark.task.reaper.killTimeout"), cluster);
      assertEquals(Redaction.SPARK_REGEX, conf(argv, "spark.redaction.regex"), cluster);
      assertFalse(String.join(" ", argv).contains(CLUSTER_SECRET), cluster + ": the secret is on the command line");
    });
    // The standalone secret reaches spark-submit in the properties file only.
    List<String> standalone = runs.get("standalone");
    assertEquals(clusterSecretFile().toString(), standalone.get(standalone.indexOf("--properties-file") + 1));
  }

  @Test
  void standaloneRefusesToSubmitWithoutTheClusterSecretUnlessAuthenticationIsTurnedOff() throws Exception {
    Path noSecret = tmp.resolve("no-secret.conf");
    Files.writeString(noSecret, "spark.driver.host 127.0.0.1\n");
    ProcessRun refused = ProcessRun.run(tmp, Map.of("SPARK_DPO_DRY_RUN", "1", "SPARK_DPO_JAR", "/a.jar",
        "SPARK_MASTER", "spark://m:7077", "SPARK_DPO_CONF_FILE", noSecret.toString()),
        List.of("bash", DIR.resolve("deploy/standalone/submit.sh").toString(), "train"));
    assertEquals(2, refused.exitCode(), refused.output());
    assertTrue(refused.output().contains("spark.authenticate.secret"), refused.output());
    assertTrue(refused.output().contains(noSecret.toString()), refused.output());

    List<String> off = dryRun("deploy/standalone/submit.sh", Map.of("SPARK_MASTER", "spark://m:7077",
        "SPARK_DPO_AUTHENTICATE", "false"), "train");
    assertEquals(null, conf(off, "spark.authenticate"));
    assertEquals(null, conf(off, "spark.network.crypto.enabled"));
    assertEquals(Redaction.SPARK_REGEX, conf(off, "spark.redaction.regex"), "redaction stays on");
  }

  @Test
  void yarnAndKubernetesScriptsSetExecutorCountAndTheirOwnSettings() throws Exception {
    List<String> yarn = dryRun("deploy/yarn/submit.sh", Map.of("HADOOP_CONF_DIR", "/etc/hadoop",
        "SPARK_DPO_WORKERS", "4", "SPARK_DPO_YARN_QUEUE", "ml"), "train");
    assertTrue(yarn.containsAll(List.of("--master", "yarn", "--queue", "ml")), yarn.toString());
    assertEquals("4", conf(yarn, "spark.executor.instances"));

    ProcessRun noConf = ProcessRun.run(tmp, Map.of("SPARK_DPO_DRY_RUN", "1", "SPARK_DPO_JAR", "/a.jar",
        "HADOOP_CONF_DIR", "", "YARN_CONF_DIR", ""), List.of("bash", DIR.resolve("deploy/yarn/submit.sh").toString(),
        "train"));
    assertEquals(2, noConf.exitCode(), noConf.output());
    assertTrue(noConf.output().contains("HADOOP_CONF_DIR"), noConf.output());

    List<String> k8s = dryRun("deploy/k8s/submit.sh", Map.of("SPARK_K8S_MASTER", "k8s://https://api:6443",
        "SPARK_DPO_IMAGE", "reg/spark-dpo:1", "SPARK_DPO_GPUS", "1", "SPARK_DPO_JAR",
        "local:///opt/spark-dpo/spark-dpo-app.jar"), "cluster-check", "--workers", "2");
    assertTrue(k8s.containsAll(List.of("--master", "k8s://https://api:6443", "--deploy-mode", "cluster")));
    assertEquals("reg/spark-dpo:1", conf(k8s, "spark.kubernetes.container.image"));
    assertEquals("nvidia.com", conf(k8s, "spark.executor.resource.gpu.vendor"));
    assertEquals("spark-dpo-cluster-check", k8s.get(k8s.indexOf("--name") + 1));
    assertEquals(conf(k8s, "spark.executor.cores"), conf(k8s, "spark.task.cpus"));
  }

  @Test
  void gpuDiscoveryPrintsCudaOrdinalsFromNvidiaSmiOrTheVisibleDevices() throws Exception {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    Path fake = bin.resolve("nvidia-smi");
    // Stands in for the driver's tool: prints one index per line, as --query-gpu=index --format=csv,noheader does.
    Files.writeString(fake, "#!/bin/sh\nprintf '0\\n1\\n2\\n'\n");
    Files.setPosixFilePermissions(fake, PosixFilePermissions.fromString("rwxr-xr-x"));
    String script = DIR.resolve("deploy/gpu/getGpusResources.sh").toString();
    String path = bin + ":/usr/bin:/bin";

    ProcessRun all = ProcessRun.run(tmp, Map.of("PATH", path), List.of("bash", script));
    assertEquals(0, all.exitCode(), all.output());
    assertEquals("{\"name\": \"gpu\", \"addresses\": [\"0\", \"1\", \"2\"]}", all.output().trim());

    Map<String, String> restricted = new HashMap<>(Map.of("PATH", path, "CUDA_VISIBLE_DEVICES", "2,0"));
    ProcessRun two = ProcessRun.run(tmp, restricted, List.of("bash", script));
    assertEquals("{\"name\": \"gpu\", \"addresses\": [\"0\", \"1\"]}", two.output().trim());

    ProcessRun none = ProcessRun.run(tmp, Map.of("PATH", "/usr/bin:/bin"), List.of("bash", script));
    assertEquals(1, none.exitCode(), none.output());
    assertTrue(none.output().contains("nvidia-smi not found"), none.output());
  }
}
