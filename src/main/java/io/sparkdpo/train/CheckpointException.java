package io.sparkdpo.train;

/** A checkpoint that cannot be used: not committed, a file missing, or a checksum that does not match. */
public class CheckpointException extends RuntimeException {
  public CheckpointException(String message) {
    super(message);
  }

  public CheckpointException(String message, Throwable cause) {
    super(message, cause);
  }
}
