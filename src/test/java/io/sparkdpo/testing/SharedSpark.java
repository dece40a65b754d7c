package io.sparkdpo.testing;

import org.apache.spark.sql.SparkSession;

/**
 * One {@code local[2]} SparkSession for the whole test JVM: starting Spark costs seconds, so every Spark test
 * shares it. Tests must not stop it and must not rely on session state left by others.
 */
public final class SharedSpark {
  private static SparkSession session;
  private static boolean hookAdded;

  private SharedSpark() {}

  public static synchronized SparkSession get() {
    if (session == null || session.sparkContext().isStopped()) { // LocalClusterSpark stops it: start anew
      session = SparkSession.builder()
          .master("local[2]")
          .appName("spark-dpo-tests")
          .config("spark.ui.enabled", "false")
          .config("spark.ui.showConsoleProgress", "false")
          .config("spark.sql.shuffle.partitions", "4")
          .config("spark.sql.session.timeZone", "UTC")
          .config("spark.driver.host", "127.0.0.1")
          .getOrCreate();
      session.sparkContext().setLogLevel("WARN");
      if (!hookAdded) {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> session.stop()));
        hookAdded = true;
      }
    }
    return session;
  }
}
