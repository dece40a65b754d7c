package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.Redaction;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14's secrets drill as a test: fake values for every kind of credential-like key (*.key, keyfile,
 * encryption.key, account.key, oauth, signature, credential, token, secret, password), each given through
 * {@code --set}, the job's YAML file and the environment (environment variables, and {@code -D} system properties as
 * spark-submit's {@code --conf} and {@code SPARK_DPO_JAVA_OPTS} pass them), reach {@code prepare}, {@code reference}
 * and {@code train} (tiny, local mode, each in a JVM of its own with the event log on and Spark's conf logged), plus
 * {@code spark-dpo config} and a live Spark UI. Then every written file (outputs, event logs, captured logs, the
 * UI's environment page and REST answer, anything the JVMs left in their working folder) is searched for the values:
 * none may be found. The key names must be found in the event log, so the settings did reach Spark.
 */
class SecretsStayOutOfOutputsTest {
  @TempDir
  Path dir;

  /** Key -> fake value, per channel. Values are unique, so a hit names the channel and the key. */
  private static final Map<String, String> SET = new LinkedHashMap<>();
  private static final Map<String, String> YAML = new LinkedHashMap<>();
  private static final Map<String, String> SYSTEM_PROPERTIES = new LinkedHashMap<>();
  private static final Map<String, String> ENVIRONMENT = new LinkedHashMap<>();

  static {
    // Our own keys: storage.s3 (static keys for test servers) through --set, the rest as Spark/Hadoop properties.
    SET.put("storage.s3.access_key", "fakeSetAccessKey0451");
    SET.put("storage.s3.secret_key", "fakeSetSecretKey0452");
    SET.put("storage.s3.session_token", "fakeSetSessionToken0453");
    SET.put("spark.conf.spark.hadoop.fs.s3a.encryption.key", "fakeSetSseKey0454");
    SET.put("spark.conf.spark.hadoop.fs.azure.account.key.setacct.dfs.core.windows.net", "fakeSetAccountKey0455");
    SET.put("spark.conf.spark.hadoop.google.cloud.auth.service.account.json.keyfile", "fakeSetKeyfile0456");
    SET.put("spark.conf.spark.hadoop.fs.azure.account.oauth2.client.id.setacct", "fakeSetOauth0457");
    SET.put("spark.conf.spark.hadoop.fs.example.request.signature", "fakeSetSignature0458");
    SET.put("spark.conf.spark.hadoop.fs.example.credential", "fakeSetCredential0459");
    SET.put("spark.conf.spark.hadoop.fs.azure.sas.fixed.token", "fakeSetToken0460");
    SET.put("spark.conf.spark.hadoop.fs.example.password", "fakeSetPassword0461");
    SET.put("spark.conf.spark.driver.extraJavaOptions", "-Dfs.example.secret.key=fakeSetInValue0462");

    YAML.put("spark.hadoop.fs.s3a.bucket.yb.encryption.key", "fakeYamlSseKey0501");
    YAML.put("spark.hadoop.fs.azure.account.key.yamlacct.blob.core.windows.net", "fakeYamlAccountKey0502");
    YAML.put("spark.hadoop.fs.gs.auth.service.account.json.keyfile", "fakeYamlKeyfile0503");
    YAML.put("spark.hadoop.fs.azure.account.oauth2.client.id.yamlacct", "fakeYamlOauth0504");
    YAML.put("spark.hadoop.fs.yaml.request.signature", "fakeYamlSignature0505");
    YAML.put("spark.hadoop.fs.yaml.credential", "fakeYamlCredential0506");
    YAML.put("spark.hadoop.fs.yaml.token", "fakeYamlToken0507");
    YAML.put("spark.hadoop.fs.yaml.client.secret", "fakeYamlSecret0508");
    YAML.put("spark.hadoop.fs.yaml.password", "fakeYamlPassword0509");
    YAML.put("spark.hadoop.fs.gs.auth.service.account.private.key", "fakeYamlPrivateKey0510");

    SYSTEM_PROPERTIES.put("spark.hadoop.fs.s3a.bucket.eb.encryption.key", "fakeEnvSseKey0601");
    SYSTEM_PROPERTIES.put("spark.hadoop.fs.azure.account.key.envacct.dfs.core.windows.net", "fakeEnvAccountKey0602");
    SYSTEM_PROPERTIES.put("spark.hadoop.fs.env.keyfile", "fakeEnvKeyfile0603");
    SYSTEM_PROPERTIES.put("spark.hadoop.fs.azure.account.oauth2.client.id.envacct", "fakeEnvOauth0604");
    SYSTEM_PROPERTIES.put("spark.hadoop.fs.env.signature", "fakeEnvSignature0605");
    SYSTEM_PROPERTIES.put("spark.hadoop.fs.env.credential", "fakeEnvCredential0606");
    SYSTEM_PROPERTIES.put("spark.hadoop.fs.env.token", "fakeEnvToken0607");
    SYSTEM_PROPERTIES.put("spark.authenticate.secret", "fakeEnvSparkSecret0608");
    SYSTEM_PROPERTIES.put("spark.ssl.keyPassword", "fakeEnvPassword0609");
    SYSTEM_PROPERTIES.put("fs.env.access.key", "fakeEnvPlainSysprop0610"); // not spark.*: Spark's "System Properties"

    ENVIRONMENT.put("AWS_ACCESS_KEY_ID", "fakeEnvAwsKeyId0701");
    ENVIRONMENT.put("AWS_SECRET_ACCESS_KEY", "fakeEnvAwsSecret0702");
    ENVIRONMENT.put("AWS_SESSION_TOKEN", "fakeEnvAwsToken0703");
    ENVIRONMENT.put("AZURE_STORAGE_KEY", "fakeEnvAzureKey0704");
    ENVIRONMENT.put("HF_TOKEN", "fakeEnvHfToken0705");
    ENVIRONMENT.put("DB_PASSWORD", "fakeEnvDbPassword0706");
  }

  private static List<String> allValues() {
    List<String> all = new ArrayList<>();
    for (Map<String, String> m : List.of(SET, YAML, SYSTEM_PROPERTIES, ENVIRONMENT)) {
      all.addAll(m.values());
    }
    return all;
  }

  @Test
  @Timeout(900)
  void noCredentialReachesAnyFileLogEventLogOrTheUi() throws Exception {
    Path inputs = Files.createDirectories(dir.resolve("inputs")); // holds the YAML with the values: not searched
    Path work = Files.createDirectories(dir.resolve("work"));     // everything the runs write: searched
    Path events = Files.createDirectories(work.resolve("spark-events"));
    Path logs = Files.createDirectories(work.resolve("logs"));
    Path yaml = writeYaml(inputs.resolve("job.yaml"));
    Path logConfig = writeLogConfig(inputs.resolve("log4j2.properties"));
    Path pairs = Path.of(System.getProperty("project.basedir", ".")).resolve("sample-data/preferences/trl-sample.jsonl");

    List<String> common = new ArrayList<>(List.of("--config", yaml.toString()));
    SET.forEach((k, v) -> common.addAll(List.of("--set", k + "=" + v)));
    common.addAll(List.of("--set", "spark.master=local[2]",
        "--set", "spark.conf.spark.eventLog.enabled=true",
        "--set", "spark.conf.spark.eventLog.dir=" + events.toUri(),
        // Plain files: Spark 4 compresses and rolls event logs by default, and a compressed file hides any value.
        "--set", "spark.conf.spark.eventLog.compress=false",
        "--set", "spark.conf.spark.eventLog.rolling.enabled=false",
        "--set", "spark.conf.spark.logConf=true", // Spark logs its whole conf at INFO: one more place to leak
        "--set", "spark.conf.spark.ui.enabled=false",
        "--set", "spark.conf.spark.local.dir=" + work.resolve("spark-local"),
        "--set", "spark.conf.spark.sql.warehouse.dir=" + work.resolve("warehouse")));

    Path prepared = work.resolve("prepared");
    Path referenced = work.resolve("referenced");
    Path run = work.resolve("run");
    runCommand(work, logConfig, logs.resolve("config.log"), concat(List.of("config"), common));
    runCommand(work, logConfig, logs.resolve("prepare.log"), concat(List.of("prepare", "--input", pairs.toString(),
        "--output", prepared.toString()), common));
    runCommand(work, logConfig, logs.resolve("reference.log"), concat(List.of("reference", "--data",
        prepared.toString(), "--model", "builtin:tiny", "--output", referenced.toString()), common));
    runCommand(work, logConfig, logs.resolve("train.log"), concat(List.of("train", "--data", referenced.toString(),
        "--model", "builtin:tiny", "--output", run.toString(), "--reference-mode", "precomputed", "--max-steps", "2",
        "--set", "train.per_device_train_batch_size=4", "--set", "train.save_steps=1",
        "--set", "train.logging_steps=1"), common));
    // The UI's environment page and REST answer, fetched while a session with the same settings is up.
    Path ui = work.resolve("ui");
    runMain(UiEnvironmentProbe.class, work, logConfig, logs.resolve("ui-probe.log"),
        concat(List.of(ui.toString(), yaml.toString()), setArgs(common)));

    // The runs happened: outputs, three event logs, the UI pages; and the config printout names the keys.
    assertTrue(Files.isRegularFile(prepared.resolve("manifest.json")), "prepare wrote no manifest");
    assertTrue(Files.isRegularFile(referenced.resolve("manifest.json")), "reference wrote no manifest");
    assertTrue(Files.isRegularFile(run.resolve("run.json")), "train wrote no run.json");
    assertTrue(Files.isDirectory(run.resolve("model")), "train exported no model");
    String config = Files.readString(logs.resolve("config.log"));
    assertTrue(config.contains("spark.hadoop.fs.s3a.encryption.key: '" + Redaction.REDACTED + "'"), config);
    assertTrue(config.contains("secret_key: '" + Redaction.REDACTED + "'"), config);
    List<Path> eventLogs;
    try (Stream<Path> s = Files.list(events)) {
      eventLogs = s.filter(Files::isRegularFile).toList();
    }
    assertTrue(eventLogs.size() >= 3, "one event log per stage and the probe: " + eventLogs);
    String allEvents = String.join("\n", eventLogs.stream().map(SecretsStayOutOfOutputsTest::read).toList());
    List<String> sparkKeys = new ArrayList<>();
    SET.keySet().stream().filter(k -> k.startsWith("spark.conf.")).forEach(k -> sparkKeys.add(k.substring(11)));
    sparkKeys.addAll(YAML.keySet());
    sparkKeys.addAll(SYSTEM_PROPERTIES.keySet());
    for (String key : sparkKeys) {
      assertTrue(allEvents.contains("\"" + key + "\""), "the setting " + key + " did not reach Spark's event log");
    }
    assertTrue(Files.readString(ui.resolve("environment.json")).contains("spark.hadoop.fs.s3a.encryption.key"),
        "the REST answer lists the settings");

    // The manifests record an allowlist: no Spark conf, no storage section.
    ObjectMapper json = new ObjectMapper();
    for (Path manifest : List.of(prepared.resolve("manifest.json"), referenced.resolve("manifest.json"))) {
      JsonNode recorded = json.readTree(manifest.toFile()).path("config");
      assertEquals(new TreeSet<>(List.of("model", "prepare")), fieldNames(recorded), manifest + ": " + recorded);
    }

    List<String> hits = search(work, allValues());
    assertEquals(List.of(), hits, "credential values found in written files");
  }

  /** Each file under {@code root} that holds one of {@code values} (as bytes), with the value. */
  static List<String> search(Path root, List<String> values) throws IOException {
    List<String> hits = new ArrayList<>();
    List<Path> files;
    try (Stream<Path> s = Files.walk(root)) {
      files = s.filter(Files::isRegularFile).toList();
    }
    assertTrue(files.size() > 20, "too few files to search: " + files);
    for (Path f : files) {
      byte[] bytes = Files.readAllBytes(f);
      for (String v : values) {
        if (indexOf(bytes, v.getBytes(StandardCharsets.UTF_8)) >= 0) {
          hits.add(root.relativize(f) + ": " + v);
        }
      }
    }
    return hits;
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  private static TreeSet<String> fieldNames(JsonNode n) {
    TreeSet<String> names = new TreeSet<>();
    n.fieldNames().forEachRemaining(names::add);
    return names;
  }

  private static String read(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static List<String> concat(List<String> a, List<String> b) {
    List<String> all = new ArrayList<>(a);
    all.addAll(b);
    return all;
  }

  /** The --set arguments of {@code common} as plain {@code key=value} strings. */
  private static List<String> setArgs(List<String> common) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i + 1 < common.size(); i++) {
      if (common.get(i).equals("--set")) {
        out.add(common.get(++i));
      }
    }
    return out;
  }

  private static Path writeYaml(Path file) throws IOException {
    StringBuilder y = new StringBuilder("spark:\n  conf:\n");
    YAML.forEach((k, v) -> y.append("    ").append(k).append(": \"").append(v).append("\"\n"));
    Files.writeString(file, y.toString());
    return file;
  }

  /** INFO for everything (Spark's own start-up lines included), to a captured stream. */
  private static Path writeLogConfig(Path file) throws IOException {
    Files.writeString(file, String.join("\n",
        "rootLogger.level = info",
        "rootLogger.appenderRef.stdout.ref = console",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.target = SYSTEM_ERR",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = %d{HH:mm:ss} %-5p %c{1}: %m%n%ex", ""));
    return file;
  }

  private static void runCommand(Path cwd, Path logConfig, Path log, List<String> args) throws Exception {
    runMain(Main.class, cwd, logConfig, log, args);
  }

  /** {@code main} of {@code mainClass} in a JVM of its own, with the fake system properties and environment. */
  private static void runMain(Class<?> mainClass, Path cwd, Path logConfig, Path log, List<String> args)
      throws Exception {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-opens") || a.startsWith("-Djdk.reflect") || a.startsWith("-Dio.netty")) {
        command.add(a);
      }
    }
    command.addAll(List.of("-Xmx2g", "-Dai.djl.offline=true", "-Dlog4j2.configurationFile=" + logConfig));
    SYSTEM_PROPERTIES.forEach((k, v) -> command.add("-D" + k + "=" + v));
    command.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass.getName()));
    command.addAll(args);
    ProcessBuilder pb = new ProcessBuilder(command).directory(cwd.toFile()).redirectErrorStream(true)
        .redirectOutput(log.toFile());
    pb.environment().putAll(ENVIRONMENT);
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    Process p = pb.start();
    if (!p.waitFor(300, TimeUnit.SECONDS)) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      throw new IllegalStateException(mainClass.getSimpleName() + " " + args.get(0) + " did not finish in 300 s");
    }
    assertEquals(0, p.exitValue(), mainClass.getSimpleName() + " " + args.get(0) + " failed:\n" + tail(log));
  }

  private static String tail(Path log) throws IOException {
    List<String> lines = Files.readAllLines(log);
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
  }

  /**
   * A session built as every command builds it ({@link SparkSessions#create}) with the UI on (loopback, as
   * SPARK_LOCAL_IP says): writes the UI's environment page and the REST API's environment answer to
   * {@code args[0]}. Args: output folder, YAML file, then {@code key=value} overrides.
   */
  public static final class UiEnvironmentProbe {
    public static void main(String[] args) throws Exception {
      Path out = Files.createDirectories(Path.of(args[0]));
      List<String> overrides = new ArrayList<>(Arrays.asList(args).subList(2, args.length));
      overrides.add("spark.conf.spark.ui.enabled=true");
      JobConfig cfg = ConfigLoader.load(Path.of(args[1]), overrides);
      SparkSession spark = SparkSessions.create(cfg, "ui-probe");
      try {
        SparkContext sc = spark.sparkContext();
        spark.range(10).count(); // one job, so the UI has something besides the environment
        String base = sc.uiWebUrl().get();
        Files.write(out.resolve("environment.html"), get(base + "/environment/"));
        Files.write(out.resolve("environment.json"),
            get(base + "/api/v1/applications/" + sc.applicationId() + "/environment"));
      } finally {
        spark.stop();
      }
    }

    private static byte[] get(String url) throws IOException {
      try (InputStream in = URI.create(url).toURL().openStream()) {
        return in.readAllBytes();
      }
    }
  }
}
