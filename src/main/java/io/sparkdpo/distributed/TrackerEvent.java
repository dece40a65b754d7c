package io.sparkdpo.distributed;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/**
 * One line of the task-to-driver protocol (JSON lines over TCP). The driver opens a connection with a
 * {@link #CHALLENGE} carrying a fresh nonce; the rank's first line is a {@link #HELLO} saying who is speaking (attempt,
 * rank, executor, host, pid, device) with a {@code proof}: the run secret's HMAC over the nonce and those fields
 * ({@link DriverTracker#proof}). The driver answers {@code ok} or {@code refused: why}. Fields not used by a type
 * are left out.
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
    @JsonProperty("proof") String proof,
    @JsonProperty("executor") String executor,
    @JsonProperty("host") String host,
    @JsonProperty("pid") Long pid,
    @JsonProperty("device") String device,
    @JsonProperty("nonce") String nonce) {

  public static final String CHALLENGE = "challenge";
  public static final String HELLO = "hello";
  public static final String STARTED = "started";
  public static final String STEP = "step";
  /** A logging window's record (every {@code logging_steps}), what the metrics log keeps. */
  public static final String LOG = "log";
  public static final String EVAL = "eval";
  public static final String CHECKPOINT = "checkpoint";
  public static final String FINISHED = "finished";
  public static final String FAILED = "failed";

  /** The driver's opening line: answer with a hello proving the run's secret over this nonce (hex). */
  static TrackerEvent challenge(String nonceHex) {
    return new TrackerEvent(CHALLENGE, null, null, null, null, null, null, null, null, null, null, null, null,
        nonceHex);
  }

  /** Who is speaking, before {@link #withProof}. */
  static TrackerEvent hello(int attempt, int rank, String executor, String host, long pid, String device) {
    return new TrackerEvent(HELLO, attempt, rank, null, null, null, null, null, null, executor, host, pid, device,
        null);
  }

  static TrackerEvent of(String type, long step) {
    return new TrackerEvent(type, null, null, step, null, null, null, null, null, null, null, null, null, null);
  }

  TrackerEvent withProof(String hex) {
    return new TrackerEvent(type, attempt, rank, step, metrics, detail, retryable, checksum, hex, executor, host,
        pid, device, nonce);
  }

  TrackerEvent withMetrics(Map<String, Double> values) {
    return new TrackerEvent(type, attempt, rank, step, values, detail, retryable, checksum, proof, executor, host,
        pid, device, nonce);
  }

  TrackerEvent withDetail(String text, Boolean canRetry) {
    return new TrackerEvent(type, attempt, rank, step, metrics, text, canRetry, checksum, proof, executor, host,
        pid, device, nonce);
  }

  TrackerEvent withChecksum(long value) {
    return new TrackerEvent(type, attempt, rank, step, metrics, detail, retryable, value, proof, executor, host,
        pid, device, nonce);
  }

  /** This event as the driver saw it: stamped with the connection's attempt and rank, proof and nonce dropped. */
  TrackerEvent from(int fromAttempt, int fromRank) {
    return new TrackerEvent(type, fromAttempt, fromRank, step, metrics, detail, retryable, checksum, null, executor,
        host, pid, device, null);
  }
}
