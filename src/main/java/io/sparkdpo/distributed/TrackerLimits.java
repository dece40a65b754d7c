package io.sparkdpo.distributed;

import java.time.Duration;

/**
 * What one peer may cost the driver's tracker. Before authentication: a handshake slot among
 * {@code maxPendingHandshakes}, {@code maxHelloBytes} of buffer and {@code helloTimeout} of time, and no thread.
 * After it: one reader thread among {@code maxConnections} and lines of at most {@code maxLineBytes}.
 *
 * @param helloTimeout from accept to a complete hello; a peer that is slower is dropped
 * @param maxPendingHandshakes unauthenticated connections held at once; one more drops the oldest
 * @param maxConnections authenticated connections (reader threads) at once; more are refused
 * @param maxHelloBytes longest hello line (a real one is a few hundred bytes)
 * @param maxLineBytes longest event line after the hello (a real one is at most a few KiB: failure reasons are cut)
 */
record TrackerLimits(Duration helloTimeout, int maxPendingHandshakes, int maxConnections, int maxHelloBytes,
    int maxLineBytes) {
  /** Ranks answer a challenge in milliseconds; ten seconds leave room for a GC pause on a loaded executor. */
  static final TrackerLimits DEFAULT = new TrackerLimits(Duration.ofSeconds(10), 64, 256, 4096, 64 << 10);

  TrackerLimits {
    if (helloTimeout.isNegative() || helloTimeout.isZero()) {
      throw new IllegalArgumentException("the hello timeout must be positive, got " + helloTimeout);
    }
    if (maxPendingHandshakes < 1 || maxConnections < 1) {
      throw new IllegalArgumentException("the tracker must hold at least one handshake and one connection");
    }
    if (maxHelloBytes < 256 || maxHelloBytes > 8192) {
      throw new IllegalArgumentException("a hello buffer of 256 to 8192 bytes, got " + maxHelloBytes);
    }
    if (maxLineBytes < 1024) {
      throw new IllegalArgumentException("event lines of at least 1024 bytes, got " + maxLineBytes);
    }
  }
}
