package io.sparkdpo.distributed;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.io.Serializable;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.resource.ResourceInformation;
import org.apache.spark.sql.SparkSession;
import scala.collection.Iterator;
import scala.collection.Iterator$;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

/**
 * Runs what a training stage needs from a cluster, without training: a barrier stage of W tasks (all scheduled
 * at once), each in its own executor JVM, each loading the PyTorch engine from the application jar on the device
 * Spark assigned it and computing on it, and one {@code allGather} among them (the rendezvous training uses).
 */
public final class ClusterCheck {
  private ClusterCheck() {}

  /** What one barrier task saw. {@code checkSum} is the sum of 1..100 computed by the engine (5050). */
  public record TaskReport(int rank, String host, long pid, String executorId, int cpus, List<String> gpus,
      String engine, String engineVersion, int engineGpus, String device, double checkSum, List<String> peers,
      String error) implements Serializable {}

  /** Runs W barrier tasks; Spark fails the job if it cannot schedule all W at once. */
  public static List<TaskReport> run(SparkSession spark, int workers, String modelDevice) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    List<Integer> ranks = IntStream.range(0, workers).boxed().toList();
    return jsc.parallelize(ranks, workers).rdd()
        .barrier()
        .mapPartitions(new Probe(modelDevice), false, ClassTag$.MODULE$.apply(TaskReport.class))
        .toJavaRDD()
        .collect();
  }

  /** Everything wrong with a set of reports, each as one sentence; empty when the cluster can train. */
  public static List<String> problems(List<TaskReport> reports, int workers, boolean gpusRequested) {
    List<String> out = new ArrayList<>();
    if (reports.size() != workers) {
      out.add("expected " + workers + " task reports, got " + reports.size());
    }
    Set<String> jvms = new HashSet<>();
    Set<String> gpus = new HashSet<>();
    for (TaskReport r : reports) {
      if (r.error() != null) {
        out.add("rank " + r.rank() + " on " + r.host() + ": " + r.error());
        continue;
      }
      if (!jvms.add(r.host() + "/" + r.pid())) {
        out.add("rank " + r.rank() + " shares executor JVM " + r.host() + "/" + r.pid() + " with another task: "
            + "one training task per executor needs spark.task.cpus = spark.executor.cores");
      }
      if (Math.abs(r.checkSum() - 5050.0) > 1e-6) {
        out.add("rank " + r.rank() + ": the engine computed " + r.checkSum() + " instead of 5050");
      }
      if (r.peers().size() != workers) {
        out.add("rank " + r.rank() + " heard from " + r.peers().size() + " of " + workers + " tasks");
      }
      if (gpusRequested) {
        if (r.gpus().isEmpty()) {
          out.add("rank " + r.rank() + " was given no GPU");
        } else if (!gpus.add(r.host() + "/" + r.gpus().get(0))) {
          out.add("rank " + r.rank() + " shares GPU " + r.gpus().get(0) + " on " + r.host());
        }
        if (r.engineGpus() == 0) {
          out.add("rank " + r.rank() + ": the engine sees no GPU (CPU natives shipped? build with -Pcuda)");
        }
      }
    }
    return out;
  }

  private static final class Probe extends AbstractFunction1<Iterator<Integer>, Iterator<TaskReport>>
      implements Serializable {
    private final String modelDevice;

    Probe(String modelDevice) {
      this.modelDevice = modelDevice;
    }

    @Override
    public Iterator<TaskReport> apply(Iterator<Integer> ignored) {
      BarrierTaskContext ctx = BarrierTaskContext.get();
      int rank = ctx.partitionId();
      String host = hostName();
      long pid = ProcessHandle.current().pid();
      ResourceInformation gpu = ctx.resourcesJMap().get(TaskDevice.GPU);
      List<String> gpus = gpu == null ? List.of() : Arrays.asList(gpu.addresses());
      String engine = null;
      String version = null;
      int engineGpus = -1;
      String device = null;
      double sum = Double.NaN;
      String error = null;
      try {
        Device d = TaskDevice.forCurrentTask(modelDevice);
        device = d.toString();
        Engine e = Engine.getEngine("PyTorch");
        engine = e.getEngineName();
        version = e.getVersion();
        engineGpus = e.getGpuCount();
        try (NDManager m = e.newBaseManager(d)) {
          NDArray a = m.arange(1f, 101f);
          sum = a.sum().getFloat();
        }
      } catch (RuntimeException | LinkageError ex) {
        error = ex.getClass().getSimpleName() + ": " + ex.getMessage();
      }
      // Every task reaches this line, failed or not, so no task is left waiting at the barrier.
      List<String> peers = Arrays.asList(ctx.allGather(rank + "@" + host + "/" + pid));
      String executorId = SparkEnv.get() == null ? "?" : SparkEnv.get().executorId();
      TaskReport r = new TaskReport(rank, host, pid, executorId, ctx.cpus(), gpus, engine, version, engineGpus,
          device, sum, new ArrayList<>(peers), error);
      // Iterator.single exists in Scala 2.12 and 2.13 alike (scala.jdk.javaapi is 2.13 only): see docs/spark-3.5.md.
      return Iterator$.MODULE$.single(r);
    }
  }

  private static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return "unknown-host";
    }
  }
}
