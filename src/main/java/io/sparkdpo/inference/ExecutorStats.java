package io.sparkdpo.inference;

import java.io.Serializable;
import java.util.List;
import java.util.TreeSet;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.util.CollectionAccumulator;
import org.apache.spark.util.LongAccumulator;

/**
 * What a model stage's tasks report back to the driver through accumulators: how many tasks ran, in which JVMs, and
 * how many model loads they caused. A stage that caches its model per JVM shows loads equal to the number of JVMs that
 * ran its tasks (each of which loaded the model once), however many partitions there were. Counts come from
 * successful tasks; a recomputed stage reports again.
 */
public final class ExecutorStats implements Serializable {
  private final LongAccumulator tasks;
  private final LongAccumulator loads;
  private final CollectionAccumulator<String> jvms;

  private ExecutorStats(LongAccumulator tasks, LongAccumulator loads, CollectionAccumulator<String> jvms) {
    this.tasks = tasks;
    this.loads = loads;
    this.jvms = jvms;
  }

  /** Registers the accumulators of one stage (named after it in the Spark UI). */
  public static ExecutorStats register(SparkContext sc, String stage) {
    return new ExecutorStats(sc.longAccumulator(stage + " tasks"), sc.longAccumulator(stage + " model loads"),
        sc.collectionAccumulator(stage + " JVMs"));
  }

  /** Called once per task, on the executor. */
  public void taskRan() {
    tasks.add(1);
  }

  /** Called when a task takes a model from its JVM's cache; {@code loadedNow} when the task had to load it. */
  public void modelUsed(boolean loadedNow) {
    loads.add(loadedNow ? 1 : 0);
    jvms.add(currentJvm());
  }

  /** This JVM: the Spark executor id (the driver's in local mode) and the process id. */
  static String currentJvm() {
    SparkEnv env = SparkEnv.get();
    return (env == null ? "no-spark" : env.executorId()) + "/pid " + ProcessHandle.current().pid();
  }

  /** The driver's view once the stage's action has run. */
  public Summary summary() {
    List<String> all = jvms.value();
    return new Summary(tasks.value(), loads.value(), List.copyOf(new TreeSet<>(all)));
  }

  /** Tasks run, models loaded, and the distinct JVMs whose tasks used a model. */
  public record Summary(long tasks, long modelLoads, List<String> jvms) {}
}
