package io.sparkdpo.dist;

import java.nio.ByteBuffer;

/**
 * The data plan of one collective on one rank: what to write to the right neighbour and where to
 * put what arrives from the left one. {@link RingLinks} drives it, overlapping both directions.
 * Receiving never waits for sending; sending may wait for something received (a chunk is forwarded
 * once it has arrived and been reduced).
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

  /** The buffer returned by {@link #nextToReceive()} is full: consume it. */
  void received();
}
