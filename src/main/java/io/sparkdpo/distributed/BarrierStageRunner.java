package io.sparkdpo.distributed;

import io.sparkdpo.config.FaultInjectionSettings.Kind;
import io.sparkdpo.io.FolderLease;
import io.sparkdpo.io.Storage;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.ConsoleProgress;
import io.sparkdpo.train.MetricsLog;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.rdd.RDD;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.reflect.ClassTag$;

/**
 * Runs a distributed training stage from the driver and sees it through failures.
 *
 * <p>Each attempt is one Spark job: an RDD of exactly W single-element partitions (the per-rank
 * {@link WorkerSpec}), run with {@code rdd.barrier().mapPartitions(...)} so all W tasks start together, with a
 * task resource profile when {@link ExecutorPlacement} needs one, under the job group {@code spark-dpo-<run id>}
 * and a description naming the step range and attempt. While it runs, the ranks stream events to this driver's
 * {@link DriverTracker}, which feeds the {@link RunMonitor} (progress bar, metrics log).
 *
 * <p>Spark does not retry a failed barrier result stage: the job aborts. This runner then waits for the
 * attempt's tasks to hang up, diagnoses the failure ({@link StageFailure}), logs it, and resubmits: the new
 * attempt's rank 0 resumes from the newest valid checkpoint. Non-retryable failures (diverged replicas,
 * placement errors) stop at once; otherwise it gives up after {@code maxAttempts} submissions.
 *
 * <p>The run folder has one writer: the runner holds its {@link FolderLease} (the caller's, or its own for the
 * stage) and records each attempt in it before submitting, so the tasks of an earlier attempt still running
 * somewhere (a straggler Spark could not kill) are fenced out of committing checkpoints.
 */
public final class BarrierStageRunner {
  private static final Logger LOG = LoggerFactory.getLogger(BarrierStageRunner.class);
  /** How long a failed attempt's surviving tasks get to hang up before the next attempt starts. */
  private static final Duration QUIET_TIMEOUT = Duration.ofSeconds(30);

  private final SparkSession spark;
  private final RunSpec spec;
  private final WorkerTask task;
  private RunMonitor.ProgressFactory progress = ConsoleProgress::onStderr;
  private FolderLease lease;

  public BarrierStageRunner(SparkSession spark, RunSpec spec, WorkerTask task) {
    this.spark = spark;
    this.spec = spec;
    this.task = task;
  }

  /** Where the progress bar goes (stderr by default). */
  public BarrierStageRunner withProgress(RunMonitor.ProgressFactory factory) {
    this.progress = factory;
    return this;
  }

  /** The run folder's lease, held by the caller for the run id of the spec; without it the runner takes its own. */
  public BarrierStageRunner withLease(FolderLease held) {
    if (!held.holder().runId().equals(spec.runId()) || !held.folder().equals(spec.runDir())) {
      throw new IllegalArgumentException("the lease of " + held.folder() + " is run " + held.holder().runId()
          + "'s, not run " + spec.runId() + "'s on " + spec.runDir());
    }
    this.lease = held;
    return this;
  }

  /**
   * Runs the stage until it completes, resubmitting after retryable failures.
   *
   * @throws IllegalStateException before anything runs, when the cluster cannot host the stage
   * @throws TrainingFailedException when a failure is not retryable or every attempt failed
   */
  public RunOutcome run() {
    SparkContext sc = spark.sparkContext();
    SparkConf conf = sc.getConf();
    ExecutorPlacement.Plan placement = ExecutorPlacement.plan(conf, spec.worldSize(), task.needsOwnJvm());
    if (spec.faults().kind() == Kind.EXIT && sc.isLocal()) {
      throw new IllegalStateException("fault injection kind 'exit' halts an executor JVM, but master "
          + sc.master() + " runs the tasks in the driver JVM; use kind 'exception' or a cluster");
    }
    LOG.info("{}: {} workers, {} steps, run folder {}; placement: {}", spec.label(), spec.worldSize(),
        spec.schedule().totalSteps(), spec.runDir(), placement.description());
    Storage storage = new Storage(sc.hadoopConfiguration());
    FolderLease own = lease != null ? null
        : FolderLease.acquire(storage, spec.runDir(), spec.runId(), Duration.ofSeconds(spec.leaseTimeoutS()));
    FolderLease held = lease != null ? lease : own;
    CheckpointStore checkpoints = new CheckpointStore(storage, spec.runDir(), spec.keepCheckpoints());
    List<String> failures = new ArrayList<>();
    try (FolderLease ignored = own;
         RunMonitor monitor = new RunMonitor(spec.label(), spec.schedule(), MetricsLog.open(storage, spec.runDir()),
        progress);
         DriverTracker tracker = startTracker(conf, runSecret(conf, spec.runId()), monitor)) {
      for (int attempt = 1; ; attempt++) {
        // The workers verify and choose the checkpoint; the driver only needs the step for display.
        List<Long> committed = checkpoints.committedSteps();
        long resume = committed.isEmpty() ? 0 : committed.get(committed.size() - 1);
        held.beginAttempt(attempt); // from here, the tasks of earlier attempts cannot commit
        monitor.beginAttempt(attempt, resume);
        tracker.beginAttempt(attempt);
        try {
          List<WorkerReport> reports = submit(sc, attempt, resume, placement, tracker);
          awaitQuiet(tracker, attempt);
          return outcome(reports, attempt, failures);
        } catch (Exception e) {
          if (!(e instanceof SparkException)) {
            throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
          }
          awaitQuiet(tracker, attempt);
          StageFailure failure = StageFailure.diagnose(attempt, tracker.attempt(attempt), e);
          failures.add(failure.describe());
          LOG.warn("{}", failure.describe());
          if (!failure.retryable()) {
            throw new TrainingFailedException(failure.describe() + ". Not retryable: the run stops.", failures,
                false, e);
          }
          if (attempt >= spec.maxAttempts()) {
            throw new TrainingFailedException("gave up after " + attempt + " attempts (max_attempts): "
                + String.join(" / ", failures), failures, true, e);
          }
          LOG.warn("resubmitting the stage (attempt {} of {}); it resumes from the newest valid checkpoint",
              attempt + 1, spec.maxAttempts());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start the driver's tracker: " + e.getMessage(), e);
    } finally {
      sc.clearJobGroup();
    }
  }

  private List<WorkerReport> submit(SparkContext sc, int attempt, long resume, ExecutorPlacement.Plan placement,
      DriverTracker tracker) {
    List<WorkerSpec> specs = new ArrayList<>();
    for (int r = 0; r < spec.worldSize(); r++) {
      specs.add(WorkerSpec.of(spec, attempt, r, tracker, task.needsOwnJvm()));
    }
    sc.setJobGroup("spark-dpo-" + spec.runId(), String.format("%s: step %d/%d, attempt %d of %d, %d workers",
        spec.label(), resume, spec.schedule().totalSteps(), attempt, spec.maxAttempts(), spec.worldSize()), true);
    RDD<WorkerReport> stage = JavaSparkContext.fromSparkContext(sc)
        .parallelize(specs, spec.worldSize()).rdd()
        .barrier()
        .mapPartitions(new BarrierWorker(task), false, ClassTag$.MODULE$.apply(WorkerReport.class));
    ResourceProfile profile = placement.profile();
    if (profile != null) {
      stage = stage.withResources(profile);
    }
    List<WorkerReport> reports = new ArrayList<>(stage.toJavaRDD().collect());
    reports.sort(Comparator.comparingInt(WorkerReport::rank));
    return reports;
  }

  private RunOutcome outcome(List<WorkerReport> reports, int attempt, List<String> failures) {
    long total = spec.schedule().totalSteps();
    WorkerReport first = reports.get(0);
    for (WorkerReport r : reports) {
      if (r.stepsDone() != total || r.checksum() != first.checksum()) {
        throw new IllegalStateException("the stage completed but rank " + r.rank() + " reports " + r.stepsDone()
            + " steps and checksum " + String.format("%016x", r.checksum()) + ", rank 0 " + first.stepsDone()
            + " and " + String.format("%016x", first.checksum()));
      }
    }
    if (reports.size() != spec.worldSize()) {
      throw new IllegalStateException("expected " + spec.worldSize() + " worker reports, got " + reports.size());
    }
    LOG.info("{}: {} steps done in {} attempt(s); final parameter checksum {}", spec.label(), total, attempt,
        String.format("%016x", first.checksum()));
    return new RunOutcome(total, first.checksum(), attempt, List.copyOf(reports), List.copyOf(failures));
  }

  private static DriverTracker startTracker(SparkConf conf, RunSecret secret, RunMonitor monitor)
      throws IOException {
    String host = conf.contains("spark.driver.host") ? conf.get("spark.driver.host")
        : InetAddress.getLocalHost().getHostAddress();
    InetAddress bind = InetAddress.getByName(conf.get("spark.driver.bindAddress", host));
    return DriverTracker.start(host, bind, secret, monitor);
  }

  /**
   * Spark's own secret when {@code spark.authenticate=true} (one secret to manage, rotated by Spark per
   * application on YARN and Kubernetes), keyed to the run; otherwise a fresh random key.
   */
  static RunSecret runSecret(SparkConf conf, String runId) {
    if (conf.getBoolean("spark.authenticate", false) && SparkEnv.get() != null) {
      String sparkSecret = SparkEnv.get().securityManager().getSecretKey();
      if (sparkSecret != null && !sparkSecret.isEmpty()) {
        return RunSecret.derivedFrom(sparkSecret.getBytes(StandardCharsets.UTF_8), runId);
      }
    }
    return RunSecret.random();
  }

  private static void awaitQuiet(DriverTracker tracker, int attempt) {
    try {
      if (!tracker.awaitQuiet(attempt, QUIET_TIMEOUT)) {
        LOG.warn("attempt {}: some tasks still hold their tracker connection after {} s", attempt,
            QUIET_TIMEOUT.toSeconds());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for attempt " + attempt + " to end", e);
    }
  }
}
