package io.sparkdpo.dist;

/**
 * A collective could not complete: a peer closed its connection, died, stopped responding within
 * the timeout, or called a different collective. The message names this rank, the operation, and
 * the peer (rank and address) that this rank was talking to when it noticed.
 *
 * <p>A failure travels around the ring by closed connections, so a rank far from the cause reports
 * its neighbour; the first rank to fail names the real culprit.
 */
public final class CollectiveException extends RuntimeException {

  private static final long serialVersionUID = 1L;

  /** The peer rank this rank was talking to, or -1 when no single peer is involved. */
  private final int peerRank;

  CollectiveException(String message, int peerRank, Throwable cause) {
    super(message, cause);
    this.peerRank = peerRank;
  }

  public int peerRank() {
    return peerRank;
  }
}
