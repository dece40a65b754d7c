package io.sparkdpo.distributed;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.resource.ResourceProfileBuilder;
import org.apache.spark.resource.TaskResourceRequests;

/**
 * Decides, before anything is submitted, how the barrier stage's W tasks land on executors, and refuses set-ups
 * that cannot work:
 * <ul>
 *   <li>dynamic allocation: Spark refuses barrier stages with it;</li>
 *   <li>W &gt; 1 ranks that each need their own JVM (DJL: one gradient collector per JVM) on a {@code local}
 *   master, where every task runs in the driver JVM;</li>
 *   <li>the same on a standalone cluster whose executor size is unknown ({@code spark.executor.cores} unset:
 *   executors then take all of a worker's cores and may run several tasks).</li>
 * </ul>
 * When an executor has room for two or more tasks ({@code spark.executor.cores >= 2 * spark.task.cpus}), the
 * stage gets a task resource profile asking for all of an executor's cores, so each executor runs one rank
 * (stage-level scheduling; standalone, local-cluster, YARN and Kubernetes support it with dynamic allocation
 * off). When executors have GPUs ({@code spark.executor.resource.gpu.amount}) and tasks do not ask for one,
 * the profile also asks for one GPU per task. The rendezvous checks the result at run time (distinct executor
 * ids), whatever this plan assumed.
 */
public final class ExecutorPlacement {
  private static final Pattern LOCAL = Pattern.compile("local(\\[[^\\]]*\\])?");
  private static final Pattern LOCAL_CLUSTER = Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,.*\\]");

  /**
   * @param profileCpus cpus per task of the stage's resource profile; null when the default profile will do
   * @param profileGpus GPUs per task of the profile; 0 for none
   * @param description what was decided and why, for the log
   */
  public record Plan(Integer profileCpus, double profileGpus, String description) {
    /** The stage's task resource profile, or null to use the application's defaults. */
    public ResourceProfile profile() {
      if (profileCpus == null) {
        return null;
      }
      TaskResourceRequests requests = new TaskResourceRequests().cpus(profileCpus);
      if (profileGpus > 0) {
        requests.resource("gpu", profileGpus);
      }
      return new ResourceProfileBuilder().require(requests).build();
    }
  }

  private ExecutorPlacement() {}

  /** @throws IllegalStateException with the settings to change, when the stage cannot be placed */
  public static Plan plan(SparkConf conf, int workers, boolean ownJvm) {
    String master = conf.get("spark.master", "local[*]");
    if (conf.getBoolean("spark.dynamicAllocation.enabled", false)) {
      throw new IllegalStateException("distributed training runs a Spark barrier stage, which Spark refuses under"
          + " dynamic allocation: set spark.dynamicAllocation.enabled=false and start " + workers
          + " executors (spark.executor.instances=" + workers + " on YARN and Kubernetes)");
    }
    boolean local = LOCAL.matcher(master).matches();
    int taskCpus = conf.getInt("spark.task.cpus", 1);
    boolean gpuExecutors = conf.getDouble("spark.executor.resource.gpu.amount", 0) > 0;
    boolean gpuTasks = conf.contains("spark.task.resource.gpu.amount");
    double gpus = gpuExecutors && !gpuTasks && !local ? 1.0 : 0.0;
    String gpuNote = gpus > 0 ? ", one GPU per task" : "";
    if (!ownJvm || workers == 1) {
      return gpus > 0
          ? new Plan(taskCpus, gpus, "tasks ask for " + taskCpus + " cpus" + gpuNote)
          : new Plan(null, 0, "default task resources (" + (ownJvm ? "a single rank" : "ranks may share a JVM")
              + ")");
    }
    if (local) {
      throw new IllegalStateException("workers=" + workers + " needs " + workers + " executor JVMs, one per"
          + " rank (DJL allows one gradient collector per JVM), but master " + master + " runs every task inside"
          + " the driver JVM. Use workers: 1 here, or a cluster: local-cluster[" + workers + ",cores,memoryMB],"
          + " spark://..., yarn or k8s://...");
    }
    int executorCores = executorCores(conf, master);
    if (executorCores < taskCpus) {
      throw new IllegalStateException("spark.task.cpus=" + taskCpus + " exceeds spark.executor.cores="
          + executorCores + ": no executor can run a training task");
    }
    if (executorCores < 2 * taskCpus) {
      String why = "one task fits per executor (spark.executor.cores=" + executorCores + ", spark.task.cpus="
          + taskCpus + ")";
      return gpus > 0 ? new Plan(taskCpus, gpus, why + gpuNote) : new Plan(null, 0, why);
    }
    return new Plan(executorCores, gpus, "a task resource profile asks for all " + executorCores
        + " cores of an executor per rank, so each executor runs one rank" + gpuNote);
  }

  private static int executorCores(SparkConf conf, String master) {
    if (conf.contains("spark.executor.cores")) {
      return conf.getInt("spark.executor.cores", 1);
    }
    Matcher m = LOCAL_CLUSTER.matcher(master);
    if (m.matches()) {
      return Integer.parseInt(m.group(2));
    }
    if (master.equals("yarn") || master.startsWith("k8s://")) {
      return 1; // Spark's default executor size there
    }
    throw new IllegalStateException("set spark.executor.cores (and spark.task.cpus) for distributed training on "
        + master + ": without it a standalone executor takes every core of its worker and may run several"
        + " training tasks in one JVM, which DJL does not allow; e.g. spark.executor.cores=8 and"
        + " spark.task.cpus=8 for one 8-core rank per executor");
  }
}
