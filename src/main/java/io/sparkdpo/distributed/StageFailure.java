package io.sparkdpo.distributed;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Why a stage attempt failed, from what the ranks told the tracker and what Spark says: the root cause, ranks that
 * vanished without a word (lost executors), and Spark's own reason. Decides whether a resubmission can help.
 *
 * <p>The root cause is the earliest report of the most direct kind: a failure other than the ring's; else a ring
 * failure this rank saw itself (a hung, corrupting or disagreeing peer); else a neighbour's closed connection; else
 * a rank that only learnt that a neighbour {@linkplain CollectiveException#ABORTED_THE_RING aborted the ring}.
 */
record StageFailure(int attempt, long lastStep, String rootCause, List<Integer> lostRanks, String sparkReason,
                    boolean retryable) {

  private static final String COLLECTIVE = CollectiveException.class.getSimpleName();
  private static final List<String> NOT_RETRYABLE_MARKERS = List.of(
      ReplicaDivergenceException.class.getSimpleName(), NonRetryableTrainingException.class.getSimpleName(),
      "Task not serializable");

  static StageFailure diagnose(int attempt, AttemptLog log, Throwable sparkError) {
    List<TrackerEvent> failures = log.failures();
    TrackerEvent root = failures.stream().min(Comparator.comparingInt(StageFailure::directness)).orElse(null);
    String rootCause = root == null ? null : "rank " + root.rank() + " at step " + root.step() + ": " + root.detail();
    String spark = sparkReason(sparkError);
    boolean retryable = failures.stream().allMatch(f -> !Boolean.FALSE.equals(f.retryable()))
        && NOT_RETRYABLE_MARKERS.stream().noneMatch(spark::contains);
    return new StageFailure(attempt, log.lastStep(), rootCause, log.lostRanks(), spark, retryable);
  }

  /** 0 for the most direct evidence of what went wrong, up to 3 for a mere echo of another rank's failure. */
  private static int directness(TrackerEvent failure) {
    String detail = failure.detail();
    if (detail == null || !detail.startsWith(COLLECTIVE)) {
      return 0;
    }
    if (detail.contains(CollectiveException.ABORTED_THE_RING)) {
      return 3;
    }
    return detail.contains(" closed its connection ") ? 2 : 1;
  }

  /** One paragraph for the log and the final error. */
  String describe() {
    List<String> parts = new ArrayList<>();
    if (rootCause != null) {
      parts.add(rootCause);
    }
    if (!lostRanks.isEmpty()) {
      parts.add((lostRanks.size() == 1 ? "rank " : "ranks ") + lostRanks.toString().replaceAll("[\\[\\]]", "")
          + " vanished without a report (executor lost)");
    }
    parts.add("Spark: " + sparkReason);
    return "attempt " + attempt + " failed" + (lastStep >= 0 ? " after step " + lastStep : " before training")
        + ": " + String.join("; ", parts);
  }

  /** Spark's message without the stack traces it embeds: the first lines that say something. */
  private static String sparkReason(Throwable e) {
    String message = e.getMessage() == null ? e.toString() : e.getMessage();
    List<String> lines = new ArrayList<>();
    for (String line : message.split("\n")) {
      String t = line.trim();
      if (t.isEmpty() || t.startsWith("at ") || t.startsWith("...") || t.startsWith("Driver stacktrace")) {
        continue;
      }
      lines.add(t);
      if (lines.size() == 3) {
        break;
      }
    }
    return String.join(" | ", lines);
  }
}
