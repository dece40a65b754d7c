package io.sparkdpo.distributed;

/**
 * A collective could not complete: a peer closed its connection, died, stopped responding within
 * the timeout, sent a corrupt or malformed frame, or called a different collective. The message names this rank,
 * the operation, and the peer (rank and address) that this rank was talking to when it noticed.
 *
 * <p>A rank that fails sends the cause to both neighbours before closing its connections, and every rank passes
 * it on: a rank that fails only because another gave up says so ({@link #ABORTED_THE_RING}) and carries the
 * original message ({@link #origin()}), so the driver can tell the root cause from its echoes.
 */
public final class CollectiveException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  /** In the message of a rank that failed only because a neighbour gave up on the ring first. */
  public static final String ABORTED_THE_RING = "aborted the ring";

  /** The peer rank this rank was talking to, or -1 when no single peer is involved. */
  private final int peerRank;
  /** The message of the rank where the failure began, when this rank only echoes it; else null. */
  private final String origin;

  CollectiveException(String message, int peerRank, Throwable cause) {
    this(message, peerRank, cause, null);
  }

  CollectiveException(String message, int peerRank, Throwable cause, String origin) {
    super(message, cause);
    this.peerRank = peerRank;
    this.origin = origin;
  }

  public int peerRank() {
    return peerRank;
  }

  /** The failure of the rank where it began, when this rank failed only because a neighbour aborted; else null. */
  public String origin() {
    return origin;
  }
}
