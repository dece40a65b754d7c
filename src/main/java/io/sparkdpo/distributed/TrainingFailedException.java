package io.sparkdpo.distributed;

import java.util.List;

/** A distributed run that did not complete: a non-retryable failure, or {@code max_attempts} used up. */
public final class TrainingFailedException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final transient List<String> failures;
  private final boolean retryable;

  TrainingFailedException(String message, List<String> failures, boolean retryable, Throwable cause) {
    super(message, cause);
    this.failures = List.copyOf(failures);
    this.retryable = retryable;
  }

  /** Each failed attempt's description, oldest first. */
  public List<String> failures() {
    return failures;
  }

  /** False when the run stopped because the last failure was not retryable (e.g. diverged replicas). */
  public boolean retryable() {
    return retryable;
  }
}
