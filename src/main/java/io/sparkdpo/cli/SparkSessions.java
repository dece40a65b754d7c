package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.Redaction;
import io.sparkdpo.io.S3aSettings;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

/**
 * Builds the SparkSession a command runs in. Under spark-submit the master and settings come from there;
 * run directly (bin/spark-dpo, a notebook, a test) it falls back to an embedded {@code local[*]}.
 */
public final class SparkSessions {
  private SparkSessions() {}

  public static SparkConf sparkConf(JobConfig cfg, String stage) {
    SparkConf conf = new SparkConf(); // picks up spark.* system properties that spark-submit sets
    if (cfg.spark().master() != null) {
      conf.setMaster(cfg.spark().master());
    } else if (!conf.contains("spark.master")) {
      conf.setMaster("local[*]");
    }
    if (!conf.contains("spark.app.name")) {
      conf.setAppName(cfg.spark().appName() + " " + stage);
    }
    conf.setIfMissing("spark.ui.showConsoleProgress", "false");
    conf.setIfMissing("spark.sql.session.timeZone", "UTC");
    // s3a secrets go to Hadoop only; Spark redacts keys that match spark.redaction.regex in UI and logs.
    S3aSettings.hadoopProperties(cfg.storage().s3()).forEach((k, v) -> conf.set("spark.hadoop." + k, v));
    cfg.spark().conf().forEach(conf::set);
    conf.set(Redaction.SPARK_REDACTION_KEY, redactionRegex(conf.get(Redaction.SPARK_REDACTION_KEY, null)));
    return conf;
  }

  /**
   * Spark hides the values of keys (and values) matching {@code spark.redaction.regex} on the UI's environment page,
   * in its logs and in the event log. Its default misses encryption and account keys, so ours is always in force; a
   * regex the user set is kept beside it, never in place of it.
   */
  static String redactionRegex(String userRegex) {
    if (userRegex == null || userRegex.isBlank() || userRegex.equals(Redaction.SPARK_REGEX)) {
      return Redaction.SPARK_REGEX;
    }
    return Redaction.SPARK_REGEX + "|(?:" + userRegex + ")";
  }

  public static SparkSession create(JobConfig cfg, String stage) {
    SparkSession spark = SparkSession.builder().config(sparkConf(cfg, stage)).getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
    return spark;
  }
}
