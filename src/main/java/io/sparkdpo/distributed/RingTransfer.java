package io.sparkdpo.distributed;

import java.nio.ByteBuffer;

/**
 * The data plan of one collective on one rank: what to write to the right neighbour and where to
 * put what arrives from the left one. {@link RingLinks} drives it, overlapping both directions.
 * Receiving never waits for sending; sending may wait for something received (a chunk is forwarded
 * once it has arrived and been reduced).
 *
 * <p>Each buffer handed out by {@link #nextToSend()} travels as one checksummed frame, and each buffer from
 * {@link #nextToReceive()} takes exactly one frame, whose length must be the buffer's: both sides must cut the
 * data the same way.
 */
interface RingTransfer {

  /**
   * The next bytes to write, or null when none are ready yet or all are sent. Called again only
   * once the previously returned buffer has been written out, so that buffer may be reused.
   */
  ByteBuffer nextToSend();

  /** True once every byte of this rank's part has been handed out by {@link #nextToSend()}. */
  boolean sendComplete();

  /** The buffer to fill from the left neighbour next, or null once everything has arrived. */
  ByteBuffer nextToReceive();

  /**
   * The buffer returned by {@link #nextToReceive()} is full (and its checksum verified): consume it.
   *
   * @throws Refused when what arrived is well-formed on the wire but not acceptable (a length out of bounds)
   */
  void received();

  /** What a peer sent cannot be used: {@link RingLinks} turns this into an error naming that peer. */
  final class Refused extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Refused(String what) {
      super(what);
    }
  }
}
