package io.sparkdpo.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.spark.launcher.JavaModuleOptions;

/**
 * A Spark standalone cluster on 127.0.0.1 made of child processes, started from {@link SparkHomeFixture}'s jars
 * the way {@code sbin/start-master.sh} and {@code sbin/start-worker.sh} would: one
 * {@code org.apache.spark.deploy.master.Master} and W {@code org.apache.spark.deploy.worker.Worker}s. Applications
 * go in through {@link #submit}, i.e. {@code org.apache.spark.deploy.SparkSubmit}, the class behind
 * {@code spark-submit}. Logs and work folders are under {@code target/standalone/<name>/}. {@link #close()} kills
 * every process this started (and their children: the executors).
 *
 * <p>The cluster is secured as deploy/README.md says: {@code spark.authenticate} with a shared secret (fresh per
 * cluster) and {@code spark.network.crypto.enabled}, in a properties file ({@link #securityProperties()}) that the
 * master, the workers and every submission read; an application without the secret cannot register.
 */
public final class StandaloneCluster implements AutoCloseable {
  /** Master and workers up and registered: each is a fresh JVM (a few seconds each here). */
  public static final Duration START_TIMEOUT = Duration.ofSeconds(90);

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path sparkHome;
  private final Path dir;
  private final String masterUrl;
  private final int masterWebUiPort;
  private final Path securityProperties;
  private final List<Process> processes = new ArrayList<>();

  private StandaloneCluster(Path sparkHome, Path dir, int masterPort, int masterWebUiPort) {
    this.sparkHome = sparkHome;
    this.dir = dir;
    this.masterUrl = "spark://127.0.0.1:" + masterPort;
    this.masterWebUiPort = masterWebUiPort;
    this.securityProperties = dir.resolve("security.conf");
  }

  /**
   * Starts a master and {@code workers} workers with {@code coresPerWorker} cores and {@code memoryMbPerWorker} MB
   * each, and waits until every worker has registered.
   *
   * @param name names the log folder, {@code target/standalone/<name>/}
   */
  public static StandaloneCluster start(String name, int workers, int coresPerWorker, int memoryMbPerWorker) {
    Path home = SparkHomeFixture.get();
    Path dir = SparkHomeFixture.buildDirectory().resolve("standalone").resolve(name);
    try {
      SparkHomeFixture.deleteTree(dir);
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    StandaloneCluster cluster = new StandaloneCluster(home, dir, freePort(), freePort());
    try {
      cluster.writeSecurityProperties();
      String props = cluster.securityProperties.toString();
      cluster.spawn("master", List.of("-Xmx512m"), "org.apache.spark.deploy.master.Master",
          "--host", "127.0.0.1", "--port", cluster.masterUrl.substring(cluster.masterUrl.lastIndexOf(':') + 1),
          "--webui-port", Integer.toString(cluster.masterWebUiPort), "--properties-file", props);
      for (int w = 0; w < workers; w++) {
        Path work = dir.resolve("worker-" + w + "-work");
        Files.createDirectories(work);
        cluster.spawn("worker-" + w, List.of("-Xmx512m"), "org.apache.spark.deploy.worker.Worker",
            "--host", "127.0.0.1", "--port", Integer.toString(freePort()),
            "--webui-port", Integer.toString(freePort()),
            "--cores", Integer.toString(coresPerWorker), "--memory", memoryMbPerWorker + "m",
            "--work-dir", work.toString(), "--properties-file", props, cluster.masterUrl);
      }
      cluster.awaitWorkers(workers, START_TIMEOUT);
      return cluster;
    } catch (IOException | RuntimeException e) {
      cluster.close();
      throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
    }
  }

  /**
   * The spark-defaults style file holding {@code spark.authenticate=true}, the cluster's shared secret and
   * {@code spark.network.crypto.enabled=true} (owner-readable only): what a submission needs to join.
   */
  public Path securityProperties() {
    return securityProperties;
  }

  private void writeSecurityProperties() throws IOException {
    byte[] secret = new byte[32];
    new SecureRandom().nextBytes(secret);
    Files.writeString(securityProperties, String.join("\n",
        "spark.authenticate true",
        "spark.authenticate.secret " + HexFormat.of().formatHex(secret),
        "spark.network.crypto.enabled true", ""));
    Files.setPosixFilePermissions(securityProperties, PosixFilePermissions.fromString("rw-------"));
  }

  /** {@code spark://127.0.0.1:<port>}. */
  public String masterUrl() {
    return masterUrl;
  }

  /** Where this cluster's logs, work folders and submissions' logs go. */
  public Path directory() {
    return dir;
  }

  /** The master's JSON status ({@code /json/}): workers, cores, running and completed applications. */
  public JsonNode masterStatus() {
    try (InputStream in = URI.create("http://127.0.0.1:" + masterWebUiPort + "/json/").toURL().openStream()) {
      return JSON.readTree(in);
    } catch (IOException e) {
      throw new UncheckedIOException("master status at port " + masterWebUiPort + " unavailable", e);
    }
  }

  /** The outcome of one {@code spark-submit}. */
  public record Submission(int exitCode, String stdout, Path stderrLog) {
    public String stderrTail() {
      return ProcessLogs.tail(stderrLog, 60);
    }
  }

  /**
   * Runs {@code spark-submit --master <this cluster> --properties-file <security properties> <args>} through the
   * {@code SparkSubmit} main class (client deploy mode: the driver is the submitting process) and waits for it to
   * end.
   *
   * @param label names the log files, {@code <label>.out/.err}
   * @param env extra environment for the submitting process
   */
  public Submission submit(String label, Duration timeout, Map<String, String> env, String... args) {
    List<String> sparkSubmitArgs = new ArrayList<>(List.of("--master", masterUrl, "--properties-file",
        securityProperties.toString()));
    sparkSubmitArgs.addAll(Arrays.asList(args));
    ProcessBuilder pb = processBuilder(List.of("-Xmx1g"), "org.apache.spark.deploy.SparkSubmit", sparkSubmitArgs);
    pb.environment().putAll(env);
    return run(label, timeout, pb);
  }

  /**
   * Runs any command (a submit script, say) with this cluster's environment ({@code SPARK_HOME} = the fixture,
   * whose {@code bin/spark-submit} works like Spark's, {@code SPARK_MASTER} = this master) plus {@code env}.
   */
  public Submission runCommand(String label, Duration timeout, Map<String, String> env, List<String> command) {
    ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
    pb.environment().putAll(processBuilder(List.of(), "unused", List.of()).environment());
    pb.environment().put("SPARK_MASTER", masterUrl);
    pb.environment().putAll(env);
    return run(label, timeout, pb);
  }

  private Submission run(String label, Duration timeout, ProcessBuilder pb) {
    Path out = dir.resolve(label + ".out");
    Path err = dir.resolve(label + ".err");
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + pb.command(), e);
    }
    try {
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        kill(p);
        throw new IllegalStateException(label + " did not finish within " + timeout.toSeconds() + " s\n"
            + ProcessLogs.tail(err, 60));
      }
      return new Submission(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), err);
    } catch (InterruptedException e) {
      kill(p);
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public void close() {
    // Workers first (they kill their executors), then the master.
    for (int i = processes.size() - 1; i >= 0; i--) {
      kill(processes.get(i));
    }
    processes.clear();
  }

  private void spawn(String role, List<String> jvmOptions, String mainClass, String... args) throws IOException {
    ProcessBuilder pb = processBuilder(jvmOptions, mainClass, Arrays.asList(args));
    pb.redirectErrorStream(true).redirectOutput(dir.resolve(role + ".log").toFile());
    processes.add(pb.start());
  }

  /** {@code java <module flags> -cp SPARK_HOME/conf:SPARK_HOME/jars/* <main> <args>}, as bin/spark-class builds. */
  private ProcessBuilder processBuilder(List<String> jvmOptions, String mainClass, List<String> args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvmOptions);
    // defaultModuleOptions(), not Spark 4's defaultModuleOptionArray(): the spark-3.5 build runs this too.
    cmd.addAll(Arrays.asList(JavaModuleOptions.defaultModuleOptions().split(" ")));
    cmd.add("-cp");
    cmd.add(sparkHome.resolve("conf") + File.pathSeparator + sparkHome.resolve("jars") + File.separator + "*");
    cmd.add(mainClass);
    cmd.addAll(args);
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile());
    Map<String, String> env = pb.environment();
    env.put("SPARK_HOME", sparkHome.toString());
    env.put("SPARK_SCALA_VERSION", SparkHomeFixture.scalaBinaryVersion());
    env.put("SPARK_LOCAL_IP", "127.0.0.1");
    env.put("SPARK_LOG_DIR", dir.toString());
    env.put("DJL_OFFLINE", "true");
    env.remove("SPARK_CONF_DIR");
    return pb;
  }

  private void awaitWorkers(int workers, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    String last = "no answer yet";
    while (System.nanoTime() < deadline) {
      for (int i = 0; i < processes.size(); i++) {
        if (!processes.get(i).isAlive()) {
          String role = i == 0 ? "master" : "worker-" + (i - 1);
          throw new IllegalStateException(role + " exited with " + processes.get(i).exitValue() + "\n"
              + ProcessLogs.tail(dir.resolve(role + ".log"), 40));
        }
      }
      try {
        JsonNode status = masterStatus();
        last = "aliveworkers=" + status.path("aliveworkers").asInt();
        if (status.path("aliveworkers").asInt() >= workers) {
          return;
        }
      } catch (UncheckedIOException e) {
        last = e.getMessage(); // the master's UI is not up yet
      }
      LocalClusterSpark.sleep(250);
    }
    throw new IllegalStateException(workers + " workers did not register within " + timeout.toSeconds() + " s ("
        + last + ")\n" + ProcessLogs.tail(dir.resolve("master.log"), 40));
  }

  private static void kill(Process p) {
    p.descendants().forEach(ProcessHandle::destroy);
    p.destroy();
    try {
      if (!p.waitFor(15, TimeUnit.SECONDS)) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly().waitFor(15, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
