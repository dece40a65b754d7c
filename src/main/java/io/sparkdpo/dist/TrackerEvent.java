package io.sparkdpo.dist;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/**
 * One line of the task-to-driver protocol (JSON lines over TCP). The first line of a connection is a
 * {@link #HELLO} carrying the run's token, the attempt and who is speaking; the driver answers {@code ok} or
 * {@code refused: why}. Fields not used by a type are left out.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record TrackerEvent(
    @JsonProperty("type") String type,
    @JsonProperty("attempt") Integer attempt,
    @JsonProperty("rank") Integer rank,
    @JsonProperty("step") Long step,
    @JsonProperty("metrics") Map<String, Double> metrics,
    @JsonProperty("detail") String detail,
    @JsonProperty("retryable") Boolean retryable,
    @JsonProperty("checksum") Long checksum,
    @JsonProperty("token") String token,
    @JsonProperty("executor") String executor,
    @JsonProperty("host") String host,
    @JsonProperty("pid") Long pid,
    @JsonProperty("device") String device) {

  public static final String HELLO = "hello";
  public static final String STARTED = "started";
  public static final String STEP = "step";
  public static final String EVAL = "eval";
  public static final String CHECKPOINT = "checkpoint";
  public static final String FINISHED = "finished";
  public static final String FAILED = "failed";

  static TrackerEvent hello(String token, int attempt, int rank, String executor, String host, long pid,
      String device) {
    return new TrackerEvent(HELLO, attempt, rank, null, null, null, null, null, token, executor, host, pid, device);
  }

  static TrackerEvent of(String type, long step) {
    return new TrackerEvent(type, null, null, step, null, null, null, null, null, null, null, null, null);
  }

  TrackerEvent withMetrics(Map<String, Double> values) {
    return new TrackerEvent(type, attempt, rank, step, values, detail, retryable, checksum, token, executor, host,
        pid, device);
  }

  TrackerEvent withDetail(String text, Boolean canRetry) {
    return new TrackerEvent(type, attempt, rank, step, metrics, text, canRetry, checksum, token, executor, host,
        pid, device);
  }

  TrackerEvent withChecksum(long value) {
    return new TrackerEvent(type, attempt, rank, step, metrics, detail, retryable, value, token, executor, host,
        pid, device);
  }

  /** This event as the driver saw it: stamped with the connection's attempt and rank. */
  TrackerEvent from(int fromAttempt, int fromRank) {
    return new TrackerEvent(type, fromAttempt, fromRank, step, metrics, detail, retryable, checksum, null, executor,
        host, pid, device);
  }
}
