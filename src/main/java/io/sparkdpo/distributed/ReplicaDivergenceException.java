package io.sparkdpo.distributed;

/**
 * The replicas' parameters no longer agree bit for bit: a bug (an update that is not identical everywhere, a
 * non-deterministic kernel, a rank that skipped a step), not a fault, so the run stops without a retry.
 */
public final class ReplicaDivergenceException extends NonRetryableTrainingException {
  private static final long serialVersionUID = 1L;

  public ReplicaDivergenceException(String message) {
    super(message);
  }
}
