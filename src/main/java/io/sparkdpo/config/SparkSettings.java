package io.sparkdpo.config;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * How a stage gets its SparkSession. {@code master} null means: the master spark-submit set, or else an
 * embedded {@code local[*]}. {@code conf} is passed through verbatim (keys as Spark spells them).
 */
public record SparkSettings(String master, String appName, Map<String, String> conf) implements Validated {
  public SparkSettings {
    // Sorted, so that `spark-dpo config` and the logs list the settings in a stable order.
    conf = conf == null ? Map.of() : Collections.unmodifiableMap(new TreeMap<>(Map.copyOf(conf)));
  }

  /** {@code conf} is the user's own and may hold credentials (s3a, Azure keys): shown as {@link Redaction} allows. */
  @Override
  public String toString() {
    return "SparkSettings[master=" + master + ", appName=" + appName + ", conf=" + Redaction.freeForm(conf) + "]";
  }

  @Override
  public void validate(String prefix, Violations v) {
    v.notBlank(prefix + ".app_name", appName);
  }
}
