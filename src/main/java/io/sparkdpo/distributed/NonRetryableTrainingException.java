package io.sparkdpo.distributed;

/**
 * A training failure that a resubmission from the last checkpoint would only repeat: diverged replicas, a
 * placement that breaks the one-rank-per-JVM rule, deterministic bad input. The driver stops the run at once.
 */
public class NonRetryableTrainingException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public NonRetryableTrainingException(String message) {
    super(message);
  }

  public NonRetryableTrainingException(String message, Throwable cause) {
    super(message, cause);
  }
}
