package io.sparkdpo.distributed;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * What the driver's tracker saw of one stage attempt: which ranks connected, which reported a failure and why,
 * which finished, and which vanished without a word (their executor died). Thread-safe.
 */
public final class AttemptLog {
  private final int attempt;
  private final TreeSet<Integer> connected = new TreeSet<>();
  private final TreeSet<Integer> finished = new TreeSet<>();
  private final TreeSet<Integer> lost = new TreeSet<>();
  private final Map<Integer, TrackerEvent> failures = new TreeMap<>();
  private final List<TrackerEvent> failureOrder = new ArrayList<>();
  private long lastStep = -1;
  private int open;

  AttemptLog(int attempt) {
    this.attempt = attempt;
  }

  public int attempt() {
    return attempt;
  }

  synchronized void connected(int rank) {
    connected.add(rank);
    open++;
  }

  synchronized void record(TrackerEvent event) {
    switch (event.type()) {
      case TrackerEvent.FINISHED -> finished.add(event.rank());
      case TrackerEvent.FAILED -> {
        failures.putIfAbsent(event.rank(), event);
        failureOrder.add(event);
      }
      case TrackerEvent.STEP -> lastStep = Math.max(lastStep, event.step());
      case TrackerEvent.STARTED -> lastStep = Math.max(lastStep, event.step());
      default -> {
        // hello, eval, checkpoint: nothing to keep
      }
    }
  }

  synchronized void disconnected(int rank) {
    if (!finished.contains(rank) && !failures.containsKey(rank)) {
      lost.add(rank);
    }
    open--;
    notifyAll();
  }

  synchronized boolean awaitNoConnections(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (open > 0) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      wait(Math.max(1, left / 1_000_000));
    }
    return true;
  }

  public synchronized List<Integer> connectedRanks() {
    return List.copyOf(connected);
  }

  /** Failure reports in the order they arrived. */
  public synchronized List<TrackerEvent> failures() {
    return List.copyOf(failureOrder);
  }

  /** Ranks whose connection closed without a finished or failed report: their process died. */
  public synchronized List<Integer> lostRanks() {
    return List.copyOf(lost);
  }

  /** The newest step rank 0 reported (or a rank started at); -1 if none. */
  public synchronized long lastStep() {
    return lastStep;
  }
}
