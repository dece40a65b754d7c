package io.sparkdpo.distributed;

import java.time.Duration;
import java.util.Objects;

/**
 * Tuning and safety settings of a TCP ring.
 *
 * @param chunkBytes unit of pipelining: a chunk is forwarded as soon as it is reduced, so sending
 *     and receiving overlap; a multiple of 8 bytes
 * @param socketBufferBytes SO_SNDBUF and SO_RCVBUF of every ring socket; 0 keeps the kernel's
 *     auto-tuning. Linux caps it at net.core.[rw]mem_max.
 * @param ioTimeout longest a collective waits with no data moving although both neighbours are alive (their
 *     keepalives arrive): a backstop, since a silent rank is caught by {@code peerTimeout} first; at least
 *     {@code peerTimeout}
 * @param connectTimeout how long joining the ring may take, while peers come up
 * @param rankZeroTimeout longest the other ranks wait for {@link AllReduce#onRankZero} work (verifying,
 *     writing a checkpoint), as long as rank 0's keepalives arrive; at least {@code ioTimeout}
 * @param session identifies one group (a job and attempt); handshakes from another session are
 *     refused, so a straggler of a failed attempt cannot join a new ring
 * @param secret the run's key: a peer joins only by proving it holds it ({@link RingHandshake}); every rank of a
 *     ring needs the same one
 * @param handshakeTimeout how long one connection may take to authenticate before it is dropped (an accepted
 *     candidate) or dialled again (the dial to the right neighbour); other candidates are served meanwhile
 * @param peerTimeout longest a rank inside a collective waits while a neighbour it still needs sends nothing at
 *     all, neither data nor keepalive (ranks waiting inside a collective send keepalives to both neighbours):
 *     that neighbour is hung (a stopped process, a stuck native call) and is named in the error. Must exceed the
 *     largest skew between ranks entering a collective, except work rank 0 does alone through
 *     {@link AllReduce#onRankZero}, which keepalives cover
 */
public record RingOptions(
    int chunkBytes, int socketBufferBytes, Duration ioTimeout, Duration connectTimeout,
    Duration rankZeroTimeout, long session, RunSecret secret, Duration handshakeTimeout, Duration peerTimeout) {

  public static final int DEFAULT_CHUNK_BYTES = 1 << 20;
  public static final int DEFAULT_SOCKET_BUFFER_BYTES = 4 << 20;
  public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);
  /** The default {@link #peerTimeout()}: half of Spark's 120 s network timeout, so the ring names a hung rank first. */
  public static final Duration DEFAULT_PEER_TIMEOUT = Duration.ofSeconds(60);
  /**
   * The most bytes one broadcast of bytes, or one all-gather in total, may announce: lengths from peers are checked
   * against it before anything is allocated. The collectives carry steps, data cursors and checksums (bytes to KiBs).
   */
  public static final int MAX_MESSAGE_BYTES = 64 << 20;
  /** The longest pause between keepalives; shorter peer timeouts get 4 per timeout. */
  static final Duration MAX_KEEPALIVE_INTERVAL = Duration.ofSeconds(5);

  public RingOptions {
    if (chunkBytes < 8 || chunkBytes % 8 != 0) {
      throw new IllegalArgumentException("chunkBytes must be a positive multiple of 8 (got "
          + chunkBytes + ")");
    }
    if (socketBufferBytes < 0) {
      throw new IllegalArgumentException("socketBufferBytes must be >= 0 (got "
          + socketBufferBytes + ")");
    }
    requirePositive(ioTimeout, "ioTimeout");
    requirePositive(connectTimeout, "connectTimeout");
    requirePositive(rankZeroTimeout, "rankZeroTimeout");
    Objects.requireNonNull(secret, "secret");
    requirePositive(handshakeTimeout, "handshakeTimeout");
    requirePositive(peerTimeout, "peerTimeout");
    if (peerTimeout.compareTo(ioTimeout) > 0) {
      throw new IllegalArgumentException("peerTimeout (" + peerTimeout + ") must be at most ioTimeout (" + ioTimeout
          + ")");
    }
    if (rankZeroTimeout.compareTo(ioTimeout) < 0) {
      throw new IllegalArgumentException("rankZeroTimeout (" + rankZeroTimeout
          + ") must be at least ioTimeout (" + ioTimeout + ")");
    }
  }

  /**
   * 1 MiB chunks, 4 MiB socket buffers, 5 min I/O timeout, 2 min to join, 1 h for rank 0's work, session 0, a fresh
   * random secret (so ranks must share this one value, or be given one with {@link #withSecret}), 10 s per
   * handshake, 60 s peer timeout.
   */
  public static RingOptions defaults() {
    return new RingOptions(DEFAULT_CHUNK_BYTES, DEFAULT_SOCKET_BUFFER_BYTES,
        Duration.ofMinutes(5), Duration.ofMinutes(2), Duration.ofHours(1), 0L, RunSecret.random(),
        DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_PEER_TIMEOUT);
  }

  public RingOptions withChunkBytes(int value) {
    return new RingOptions(value, socketBufferBytes, ioTimeout, connectTimeout, rankZeroTimeout, session,
        secret, handshakeTimeout, peerTimeout);
  }

  public RingOptions withSocketBufferBytes(int value) {
    return new RingOptions(chunkBytes, value, ioTimeout, connectTimeout, rankZeroTimeout, session,
        secret, handshakeTimeout, peerTimeout);
  }

  /**
   * Also raises {@link #rankZeroTimeout()} to {@code value} if it was shorter, and lowers {@link #peerTimeout()} to
   * it if it was longer.
   */
  public RingOptions withIoTimeout(Duration value) {
    Duration rankZero = rankZeroTimeout.compareTo(value) < 0 ? value : rankZeroTimeout;
    Duration peer = peerTimeout.compareTo(value) > 0 ? value : peerTimeout;
    return new RingOptions(chunkBytes, socketBufferBytes, value, connectTimeout, rankZero, session,
        secret, handshakeTimeout, peer);
  }

  public RingOptions withConnectTimeout(Duration value) {
    return new RingOptions(chunkBytes, socketBufferBytes, ioTimeout, value, rankZeroTimeout, session,
        secret, handshakeTimeout, peerTimeout);
  }

  public RingOptions withRankZeroTimeout(Duration value) {
    return new RingOptions(chunkBytes, socketBufferBytes, ioTimeout, connectTimeout, value, session,
        secret, handshakeTimeout, peerTimeout);
  }

  public RingOptions withSession(long value) {
    return new RingOptions(chunkBytes, socketBufferBytes, ioTimeout, connectTimeout, rankZeroTimeout, value,
        secret, handshakeTimeout, peerTimeout);
  }

  public RingOptions withSecret(RunSecret value) {
    return new RingOptions(chunkBytes, socketBufferBytes, ioTimeout, connectTimeout, rankZeroTimeout, session,
        value, handshakeTimeout, peerTimeout);
  }

  public RingOptions withHandshakeTimeout(Duration value) {
    return new RingOptions(chunkBytes, socketBufferBytes, ioTimeout, connectTimeout, rankZeroTimeout, session,
        secret, value, peerTimeout);
  }

  /** Must not exceed {@link #ioTimeout()}. */
  public RingOptions withPeerTimeout(Duration value) {
    return new RingOptions(chunkBytes, socketBufferBytes, ioTimeout, connectTimeout, rankZeroTimeout, session,
        secret, handshakeTimeout, value);
  }

  /**
   * How often a rank waiting inside a collective (or rank 0 working alone) sends a keepalive to each neighbour: 4 per
   * peer timeout, at most every 5 s.
   */
  Duration keepaliveInterval() {
    Duration quarter = peerTimeout.dividedBy(4);
    Duration interval = quarter.compareTo(MAX_KEEPALIVE_INTERVAL) < 0 ? quarter : MAX_KEEPALIVE_INTERVAL;
    return interval.isZero() ? Duration.ofMillis(1) : interval;
  }

  private static void requirePositive(Duration d, String name) {
    Objects.requireNonNull(d, name);
    if (d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(name + " must be positive (got " + d + ")");
    }
  }
}
