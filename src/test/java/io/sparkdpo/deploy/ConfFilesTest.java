package io.sparkdpo.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.sparkdpo.cli.Main;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.Redaction;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;

/** conf/ and deploy/k8s: the job YAMLs load with ConfigLoader; the Spark settings files agree with the README. */
class ConfFilesTest {
  private static final Path CONF = ProcessRun.projectDir().resolve("conf");

  private static Properties sparkDefaults(String name) throws IOException {
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(CONF.resolve(name))) {
      p.load(r); // spark-defaults.conf is read the same way (whitespace-separated key and value)
    }
    return p;
  }

  /** Settings that carry a credential itself (a provider class name is not one). */
  private static boolean holdsCredential(String key) {
    return key.matches("(?i).*(access\\.key|secret|session\\.token|password|AWS_ACCESS_KEY_ID).*");
  }

  @Test
  void localJobYamlLoadsAndRunsOnThisMachine() {
    JobConfig cfg = ConfigLoader.load(CONF.resolve("local.yaml"), List.of());
    assertEquals("local[*]", cfg.spark().master());
    assertEquals("cpu", cfg.model().device());
    assertEquals(2, cfg.prepare().numShards());
  }

  @Test
  void clusterS3JobYamlLoadsWithoutAnyCredential() {
    JobConfig cfg = ConfigLoader.load(CONF.resolve("cluster-s3.yaml"), List.of());
    assertNull(cfg.spark().master(), "the master comes from spark-submit");
    assertEquals("us-east-1", cfg.storage().s3().region());
    assertNull(cfg.storage().s3().accessKey());
    assertNull(cfg.storage().s3().secretKey());
    assertFalse(cfg.storage().s3().hasStaticCredentials());
    assertEquals("gpu", cfg.model().device());
    assertEquals(0, cfg.prepare().numShards());
  }

  @Test
  void clusterSparkDefaultsRunOneTrainingTaskPerExecutorAndKeepSecretsOut() throws IOException {
    for (String name : List.of("spark-defaults.cluster-cpu.conf", "spark-defaults.cluster-gpu.conf")) {
      Properties p = sparkDefaults(name);
      assertEquals(p.getProperty("spark.executor.cores"), p.getProperty("spark.task.cpus"), name);
      assertEquals("false", p.getProperty("spark.dynamicAllocation.enabled"), name);
      assertEquals("true", p.getProperty("spark.eventLog.enabled"), name);
      assertEquals("PASSIVE", p.getProperty("spark.executorEnv.OMP_WAIT_POLICY"), name);
      assertTrue(p.getProperty("spark.hadoop.fs.s3a.aws.credentials.provider").contains("IAMInstance"), name);
      for (String key : p.stringPropertyNames()) {
        assertFalse(holdsCredential(key), name + " holds a credential: " + key);
      }
    }
    Properties gpu = sparkDefaults("spark-defaults.cluster-gpu.conf");
    assertEquals("1", gpu.getProperty("spark.executor.resource.gpu.amount"));
    assertEquals("1", gpu.getProperty("spark.task.resource.gpu.amount"));
    assertTrue(gpu.getProperty("spark.executor.resource.gpu.discoveryScript").endsWith("getGpusResources.sh"));
    assertNull(sparkDefaults("spark-defaults.cluster-cpu.conf").getProperty("spark.task.resource.gpu.amount"));
    assertEquals("local[*]", sparkDefaults("spark-defaults.local.conf").getProperty("spark.master"));
  }

  @Test
  void clusterSettingsAuthenticateEncryptReapStuckTasksAndRedactCredentials() throws IOException {
    JsonNode operator = new ObjectMapper(new YAMLFactory()).readTree(
        ProcessRun.projectDir().resolve("deploy/k8s/spark-application.yaml").toFile()).path("spec").path("sparkConf");
    Properties fromOperator = new Properties();
    operator.fields().forEachRemaining(e -> fromOperator.setProperty(e.getKey(), e.getValue().asText()));
    Map<String, Properties> files = Map.of("spark-defaults.cluster-cpu.conf", sparkDefaults(
        "spark-defaults.cluster-cpu.conf"), "spark-defaults.cluster-gpu.conf", sparkDefaults(
        "spark-defaults.cluster-gpu.conf"), "spark-application.yaml", fromOperator);
    files.forEach((name, p) -> {
      assertEquals("true", p.getProperty("spark.authenticate"), name);
      assertEquals("true", p.getProperty("spark.network.crypto.enabled"), name);
      assertEquals("true", p.getProperty("spark.task.reaper.enabled"), name);
      assertEquals("120s", p.getProperty("spark.task.reaper.killTimeout"), name);
      assertEquals(Redaction.SPARK_REGEX, p.getProperty("spark.redaction.regex"), name);
      assertNull(p.getProperty("spark.authenticate.secret"), name + " holds the cluster secret");
    });
    assertEquals(Redaction.SPARK_REGEX, sparkDefaults("spark-defaults.local.conf").getProperty("spark.redaction.regex"));
  }

  @Test
  void sparkOperatorManifestAgreesWithTheGpuClusterDefaults() throws IOException {
    JsonNode app = new ObjectMapper(new YAMLFactory()).readTree(
        ProcessRun.projectDir().resolve("deploy/k8s/spark-application.yaml").toFile());
    assertEquals("SparkApplication", app.path("kind").asText());
    JsonNode spec = app.path("spec");
    assertEquals("io.sparkdpo.cli.Main", spec.path("mainClass").asText());
    assertFalse(spec.path("dynamicAllocation").path("enabled").asBoolean(true));
    JsonNode conf = spec.path("sparkConf");
    Properties gpu = sparkDefaults("spark-defaults.cluster-gpu.conf");
    for (String key : List.of("spark.executor.cores", "spark.task.cpus", "spark.dynamicAllocation.enabled",
        "spark.task.maxFailures", "spark.executor.resource.gpu.amount", "spark.task.resource.gpu.amount",
        "spark.hadoop.fs.s3a.aws.credentials.provider", "spark.executor.resource.gpu.discoveryScript")) {
      assertEquals(gpu.getProperty(key), conf.path(key).asText(), key);
    }
    assertEquals(spec.path("executor").path("cores").asText(), conf.path("spark.task.cpus").asText());
    assertEquals(1, spec.path("executor").path("gpu").path("quantity").asInt());
    List<String> args = new ArrayList<>();
    spec.path("arguments").forEach(a -> args.add(a.asText()));
    assertEquals("train", args.get(0), args.toString());
    Main.commandLine().parseArgs(args.toArray(String[]::new)); // the real command's flags
    assertEquals(spec.path("executor").path("instances").asText(), args.get(args.indexOf("--workers") + 1),
        "one replica per executor: " + args);
    conf.fieldNames().forEachRemaining(k -> assertFalse(holdsCredential(k), "credential in manifest: " + k));
  }
}
