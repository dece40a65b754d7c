package io.sparkdpo.eval;

import io.sparkdpo.io.Storage;

/**
 * One DPO training run in the report: its label (shared with its {@link PolicyEval}s, so both get one colour), its
 * beta and its metrics.
 */
public record TrainingRun(String label, double beta, MetricsHistory metrics) {

  /** Reads {@code metricsPath} (a run's {@code metrics.jsonl}; local, hdfs: or s3a:). */
  public static TrainingRun read(Storage storage, String label, double beta, String metricsPath) {
    return new TrainingRun(label, beta, MetricsHistory.read(storage, metricsPath));
  }
}
