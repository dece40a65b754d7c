package io.sparkdpo.distributed;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** A {@link MetricsChannel} that remembers what a rank sent, for tests without a driver. */
final class RecordingChannel implements MetricsChannel {
  final TreeMap<Long, Map<String, Double>> steps = new TreeMap<>();
  final TreeMap<Long, Map<String, Double>> logs = new TreeMap<>();
  final TreeMap<Long, Map<String, Double>> evals = new TreeMap<>();
  final List<Long> checkpoints = new ArrayList<>();
  final List<String> events = new ArrayList<>();

  @Override
  public synchronized void started(long stepsDone) {
    events.add("started " + stepsDone);
  }

  @Override
  public synchronized void step(long step, Map<String, Double> metrics) {
    steps.put(step, metrics);
  }

  @Override
  public synchronized void log(long step, Map<String, Double> metrics) {
    logs.put(step, metrics);
  }

  @Override
  public synchronized void eval(long step, Map<String, Double> metrics) {
    evals.put(step, metrics);
  }

  @Override
  public synchronized void checkpoint(long step, String dir) {
    checkpoints.add(step);
  }

  @Override
  public synchronized void finished(long step, long checksum) {
    events.add("finished " + step);
  }

  @Override
  public synchronized void failed(long step, String reason, boolean retryable) {
    events.add("failed " + step);
  }
}
