package io.sparkdpo.distributed;

import java.util.Map;

/**
 * A rank's line to the driver: progress, metrics and events, as they happen. Rank 0 sends the step metrics
 * (already averaged over ranks: for the progress bar), every {@code logging_steps} the logging window's record (for
 * the metrics log), evaluations and checkpoints; every rank sends {@code started} and, when it fails,
 * {@code failed} with the reason. Implemented over TCP by {@link TrackerClient}.
 */
public interface MetricsChannel {

  /** The replica is loaded and verified; training continues after {@code stepsDone}. */
  void started(long stepsDone);

  /** Step {@code step}'s own metrics (mean over ranks). */
  void step(long step, Map<String, Double> metrics);

  /** What the metrics log records after {@code step}: the logging window's means, point values and totals. */
  void log(long step, Map<String, Double> metrics);

  void eval(long step, Map<String, Double> metrics);

  void checkpoint(long step, String dir);

  void finished(long step, long checksum);

  /** Best effort: the task is failing anyway. */
  void failed(long step, String reason, boolean retryable);
}
