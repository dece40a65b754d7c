package io.sparkdpo.distributed;

import io.sparkdpo.train.ConsoleProgress;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's view of a running stage, fed by the {@link DriverTracker}: the console progress bar (rate, ETA,
 * loss, learning rate: each step's own), the run's {@link MetricsLog} (the logging windows rank 0 closes every
 * {@code logging_steps}, and every evaluation), and log lines for placement, checkpoints and failures.
 */
public final class RunMonitor implements DriverTracker.Listener, AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(RunMonitor.class);

  /** Makes the progress bar of an attempt that starts after {@code startStep} steps. */
  @FunctionalInterface
  public interface ProgressFactory {
    ConsoleProgress create(String label, long totalSteps, long startStep);
  }

  private final String label;
  private final TrainingSchedule schedule;
  private final MetricsLog metricsLog;
  private final ProgressFactory progressFactory;
  private ConsoleProgress progress;

  public RunMonitor(String label, TrainingSchedule schedule, MetricsLog metricsLog, ProgressFactory progress) {
    this.label = label;
    this.schedule = schedule;
    this.metricsLog = metricsLog;
    this.progressFactory = progress;
  }

  /** A new bar for each attempt: its rate and ETA count only the steps this attempt takes. */
  public synchronized void beginAttempt(int attempt, long resumeStep) {
    if (progress != null) {
      progress.finish();
    }
    progress = progressFactory.create(label, schedule.totalSteps(), resumeStep);
  }

  @Override
  public synchronized void onEvent(TrackerEvent e) {
    switch (e.type()) {
      case TrackerEvent.HELLO -> LOG.info("attempt {}: rank {} runs in executor {} on {} (pid {}, {})", e.attempt(),
          e.rank(), e.executor(), e.host(), e.pid(), e.device());
      case TrackerEvent.STARTED -> {
        if (e.rank() == 0) {
          LOG.info("attempt {}: replicas verified identical, training after step {}", e.attempt(), e.step());
        }
      }
      case TrackerEvent.STEP -> {
        if (progress != null) {
          progress.update(e.step(), e.metrics());
        }
      }
      case TrackerEvent.LOG -> metricsLog.log(record(e));
      case TrackerEvent.EVAL -> {
        metricsLog.log(record(e));
        LOG.info("evaluation after step {}: {}", e.step(), e.metrics());
      }
      case TrackerEvent.CHECKPOINT -> {
        metricsLog.flush();
        LOG.info("checkpoint after step {} committed at {}", e.step(), e.detail());
      }
      case TrackerEvent.FINISHED -> {
        if (e.rank() == 0) {
          LOG.info("attempt {}: finished after step {} (parameter checksum {})", e.attempt(), e.step(),
              String.format("%016x", e.checksum()));
        }
      }
      case TrackerEvent.FAILED -> LOG.warn("attempt {}: rank {} failed at step {} ({}): {}", e.attempt(), e.rank(),
          e.step(), Boolean.TRUE.equals(e.retryable()) ? "retryable" : "not retryable", e.detail());
      default -> LOG.debug("tracker event {} ignored", e.type());
    }
  }

  private static Map<String, Object> record(TrackerEvent e) {
    Map<String, Object> r = new LinkedHashMap<>();
    r.put(MetricNames.STEP, e.step());
    r.putAll(e.metrics());
    return r;
  }

  /** Ends the bar and writes the consolidated {@code metrics.jsonl}. */
  @Override
  public synchronized void close() {
    if (progress != null) {
      progress.finish();
    }
    metricsLog.close();
  }
}
