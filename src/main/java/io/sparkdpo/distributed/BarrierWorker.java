package io.sparkdpo.distributed;

import io.sparkdpo.io.Storage;
import java.io.Serializable;
import java.time.Duration;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.resource.ResourceInformation;
import scala.Tuple2;
import scala.collection.Iterator;
import scala.collection.Iterator$;
import scala.runtime.AbstractFunction1;

/**
 * The body of one barrier task: connect to the driver's tracker, join the ring, run the {@link WorkerLoop} with
 * the {@link WorkerTask}, and return a {@link WorkerReport}. On failure it tells the driver why (before closing
 * the ring, so the driver hears the cause before the peers' echoes), then fails the task.
 */
final class BarrierWorker extends AbstractFunction1<Iterator<WorkerSpec>, Iterator<WorkerReport>>
    implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final Duration TRACKER_TIMEOUT = Duration.ofSeconds(60);

  private final WorkerTask task;

  BarrierWorker(WorkerTask task) {
    this.task = task;
  }

  @Override
  public Iterator<WorkerReport> apply(Iterator<WorkerSpec> specs) {
    BarrierTaskContext barrier = BarrierTaskContext.get();
    WorkerSpec spec = specs.next();
    if (specs.hasNext() || spec.rank() != barrier.partitionId()) {
      throw new IllegalStateException("partition " + barrier.partitionId() + " must hold exactly the spec of its"
          + " rank, got rank " + spec.rank() + (specs.hasNext() ? " and more" : ""));
    }
    SparkEnv env = SparkEnv.get();
    String executorId = env.executorId();
    String host = env.blockManager().blockManagerId().host();
    long pid = ProcessHandle.current().pid();
    String device = device(barrier.resourcesJMap());
    Storage storage = new Storage(hadoopConf(env.conf()));
    try (TrackerClient tracker = TrackerClient.connect(spec.trackerHost(), spec.trackerPort(), TRACKER_TIMEOUT,
        spec.secret(), TrackerEvent.hello(spec.attempt(), spec.rank(), executorId, host, pid, device))) {
      AllReduce group = null;
      WorkerLoop loop = null;
      try {
        group = BarrierRendezvous.join(barrier, spec, host, executorId, pid);
        WorkerContext ctx = new WorkerContext(spec.rank(), spec.worldSize(), spec.attempt(), spec.runId(),
            spec.runDir(), spec.shards(), spec.evalShards(), device, storage, group, tracker,
            new FaultInjector(spec.faults(), spec.rank(), storage, spec.runDir()), spec.schedule(),
            spec.keepCheckpoints(), true, spec.restartOnCorruptCheckpoints());
        loop = new WorkerLoop(ctx, task, barrier::killTaskIfInterrupted);
        WorkerLoop.Completed done = loop.run();
        WorkerReport report = new WorkerReport(spec.rank(), spec.attempt(), executorId, host, pid, device,
            done.stepsDone(), done.checksum());
        // Iterator.single exists in Scala 2.12 and 2.13 alike (scala.jdk.javaapi is 2.13 only): see docs/spark-3.5.md.
        return Iterator$.MODULE$.single(report);
      } catch (Throwable t) {
        tracker.failed(loop == null ? -1 : loop.step(), describe(t), task.retryable(t));
        if (t instanceof RuntimeException r) {
          throw r;
        }
        if (t instanceof Error e) {
          throw e;
        }
        throw new IllegalStateException("rank " + spec.rank() + " failed: " + t, t);
      } finally {
        if (group != null) {
          group.close();
        }
      }
    }
  }

  /** {@code gpu:N} for the first GPU Spark assigned to this task, else {@code cpu}. */
  static String device(Map<String, ResourceInformation> resources) {
    ResourceInformation gpu = resources.get("gpu");
    return gpu != null && gpu.addresses().length > 0 ? "gpu:" + gpu.addresses()[0] : "cpu";
  }

  /** The job's Hadoop settings as Spark passes them to executors: every {@code spark.hadoop.*} entry. */
  static Configuration hadoopConf(SparkConf conf) {
    Configuration hadoop = new Configuration();
    for (Tuple2<String, String> kv : conf.getAll()) {
      if (kv._1().startsWith("spark.hadoop.")) {
        hadoop.set(kv._1().substring("spark.hadoop.".length()), kv._2());
      }
    }
    return hadoop;
  }

  /** The exception chain in one line: class and message of each cause. */
  static String describe(Throwable t) {
    StringBuilder sb = new StringBuilder();
    for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if (sb.length() > 0) {
        sb.append(" <- ");
      }
      sb.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
    }
    return sb.toString();
  }
}
