package io.sparkdpo.data;

import org.apache.spark.SparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.SerializableConfiguration;
import scala.reflect.ClassTag$;

/**
 * The session's Hadoop configuration, broadcast once per job so executors open files with the same file-system
 * settings as the driver (s3a endpoint, credentials provider). Spark 4's {@code SerializableConfiguration.broadcast}
 * does the same, but Spark 3.5 lacks it and the spark-3.5 build (docs/spark-3.5.md) must compile this code too.
 */
public final class HadoopConfBroadcast {
  private HadoopConfBroadcast() {}

  /** Broadcasts {@code sc.hadoopConfiguration()} as it is now. */
  public static Broadcast<SerializableConfiguration> of(SparkContext sc) {
    return sc.broadcast(new SerializableConfiguration(sc.hadoopConfiguration()),
        ClassTag$.MODULE$.apply(SerializableConfiguration.class));
  }
}
