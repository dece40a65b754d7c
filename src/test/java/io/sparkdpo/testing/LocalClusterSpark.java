package io.sparkdpo.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;

/**
 * A SparkSession on {@code local-cluster[W,1,MB]}: W executor JVMs, each with one core, launched by in-process
 * standalone workers, so each task runs in its own process as on a cluster (barrier stages, one training task per
 * executor, per-JVM caches and static state behave for real).
 *
 * <p>Requirements, all met by {@code mvn test} (see pom.xml's surefire settings):
 * <ul>
 *   <li>the workers live in the test JVM and read {@code SPARK_HOME} from its environment only (no Spark setting
 *       replaces it): it must name {@link SparkHomeFixture#get()}, i.e. {@code target/spark-home};</li>
 *   <li>{@code SPARK_SCALA_VERSION} (2.13, or 2.12 for Spark 3.5) for the executor command builder: given here as
 *       {@code spark.executorEnv.SPARK_SCALA_VERSION}, which the worker's command builder reads too;</li>
 *   <li>{@code SPARK_LOCAL_IP=127.0.0.1}.</li>
 * </ul>
 * Only one SparkContext can run in a JVM: starting this stops any other session (e.g. {@link SharedSpark}'s, which
 * {@code SharedSpark.get()} recreates afterwards). Executor logs: {@code target/spark-home/work/<app>/<n>/stderr}.
 */
public final class LocalClusterSpark implements AutoCloseable {
  /** How long executors may take to start and register: a fresh executor JVM costs 10-20 s here. */
  public static final Duration EXECUTOR_START_TIMEOUT = Duration.ofSeconds(120);

  private final SparkSession session;
  private final int workers;

  private LocalClusterSpark(SparkSession session, int workers) {
    this.session = session;
    this.workers = workers;
  }

  /** W single-core executors of {@code memoryMb} each. */
  public static LocalClusterSpark start(int workers, int memoryMb) {
    return start(workers, memoryMb, Map.of());
  }

  /** W single-core executors of {@code memoryMb} each, with extra Spark settings (they win over the defaults). */
  public static LocalClusterSpark start(int workers, int memoryMb, Map<String, String> conf) {
    return start(workers, 1, memoryMb, conf);
  }

  /** W executors of {@code cores} cores and {@code memoryMb} each, with extra Spark settings. */
  public static LocalClusterSpark start(int workers, int cores, int memoryMb, Map<String, String> conf) {
    Path home = SparkHomeFixture.get();
    requireEnvironment(home);
    stopOtherSessions();

    Map<String, String> settings = new LinkedHashMap<>();
    settings.put("spark.driver.host", "127.0.0.1");
    settings.put("spark.ui.enabled", "false");
    settings.put("spark.ui.showConsoleProgress", "false");
    settings.put("spark.sql.shuffle.partitions", "4");
    settings.put("spark.sql.session.timeZone", "UTC");
    settings.put("spark.executor.memory", memoryMb + "m");
    settings.put("spark.executor.cores", String.valueOf(cores));
    settings.put("spark.executorEnv.SPARK_SCALA_VERSION", SparkHomeFixture.scalaBinaryVersion());
    settings.put("spark.executorEnv.SPARK_LOCAL_IP", "127.0.0.1");
    settings.put("spark.executorEnv.DJL_OFFLINE", "true");
    settings.put("spark.executor.extraJavaOptions", "-Dai.djl.offline=true");
    // Executors get Spark from SPARK_HOME/jars; the application (our classes and libraries) from here.
    settings.put("spark.executor.extraClassPath", SparkHomeFixture.applicationClasspath().stream()
        .map(Path::toString).collect(Collectors.joining(java.io.File.pathSeparator)));
    // Barrier stages check for free slots once per interval (default 15 s).
    settings.put("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "1s");
    settings.put("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "60");
    settings.putAll(conf);

    SparkSession.Builder builder = SparkSession.builder()
        .master("local-cluster[" + workers + "," + cores + "," + memoryMb + "]")
        .appName("spark-dpo-local-cluster-tests");
    settings.forEach(builder::config);
    SparkSession session = builder.getOrCreate();
    session.sparkContext().setLogLevel("WARN");
    LocalClusterSpark cluster = new LocalClusterSpark(session, workers);
    try {
      cluster.awaitExecutors(EXECUTOR_START_TIMEOUT);
    } catch (RuntimeException e) {
      cluster.close();
      throw e;
    }
    return cluster;
  }

  public SparkSession session() {
    return session;
  }

  public int workers() {
    return workers;
  }

  /** Waits until every executor has registered with the driver, so work spreads over all of them. */
  private void awaitExecutors(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (registeredExecutors() < workers) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("only " + registeredExecutors() + " of " + workers
            + " executors registered within " + timeout.toSeconds() + " s; last executor log:\n" + lastExecutorLog());
      }
      sleep(200);
    }
  }

  private int registeredExecutors() {
    // The status tracker lists the driver too.
    return session.sparkContext().statusTracker().getExecutorInfos().length - 1;
  }

  @Override
  public void close() {
    session.stop();
    SparkSession.clearActiveSession();
    SparkSession.clearDefaultSession();
  }

  private static void requireEnvironment(Path home) {
    String env = System.getenv("SPARK_HOME");
    boolean same;
    try {
      same = env != null && Files.isSameFile(Path.of(env), home);
    } catch (IOException e) {
      same = false;
    }
    if (!same) {
      throw new IllegalStateException("local-cluster needs SPARK_HOME=" + home + " in the test JVM's environment "
          + "(got " + env + "): its workers run in this JVM and read SPARK_HOME from the environment only. "
          + "mvn test sets it (pom.xml, surefire environmentVariables); elsewhere set SPARK_HOME=" + home
          + " SPARK_SCALA_VERSION=" + SparkHomeFixture.scalaBinaryVersion() + " SPARK_LOCAL_IP=127.0.0.1");
    }
    if (!"127.0.0.1".equals(System.getenv("SPARK_LOCAL_IP"))) {
      throw new IllegalStateException("local-cluster needs SPARK_LOCAL_IP=127.0.0.1 in the test JVM's environment "
          + "(got " + System.getenv("SPARK_LOCAL_IP") + ")");
    }
  }

  private static void stopOtherSessions() {
    SparkSession.getDefaultSession().foreach(s -> {
      s.stop();
      return null;
    });
    SparkSession.getActiveSession().foreach(s -> {
      s.stop();
      return null;
    });
    SparkSession.clearActiveSession();
    SparkSession.clearDefaultSession();
  }

  private static String lastExecutorLog() {
    Path work = SparkHomeFixture.get().resolve("work");
    try (Stream<Path> files = Files.walk(work)) {
      List<Path> logs = files.filter(p -> p.getFileName().toString().equals("stderr"))
          .sorted(Comparator.comparing(p -> p.toFile().lastModified()))
          .collect(Collectors.toList());
      if (logs.isEmpty()) {
        return "(no executor log under " + work + ")";
      }
      return ProcessLogs.tail(logs.get(logs.size() - 1), 40);
    } catch (IOException e) {
      return "(cannot read " + work + ": " + e + ")";
    }
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }
}
