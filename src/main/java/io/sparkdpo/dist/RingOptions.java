package io.sparkdpo.dist;

import java.time.Duration;
import java.util.Objects;

/**
 * Tuning and safety settings of a TCP ring.
 *
 * @param chunkBytes unit of pipelining: a chunk is forwarded as soon as it is reduced, so sending
 *     and receiving overlap; a multiple of 8 bytes
 * @param socketBufferBytes SO_SNDBUF and SO_RCVBUF of every ring socket; 0 keeps the kernel's
 *     auto-tuning. Linux caps it at net.core.[rw]mem_max.
 * @param ioTimeout longest a collective waits with no byte moving before it fails; must exceed the
 *     largest skew between ranks entering a collective (a checkpoint written by rank 0, say)
 * @param connectTimeout how long joining the ring may take, while peers come up
 * @param session identifies one group (a job and attempt); handshakes from another session are
 *     refused, so a straggler of a failed attempt cannot join a new ring
 */
public record RingOptions(
    int chunkBytes, int socketBufferBytes, Duration ioTimeout, Duration connectTimeout,
    long session) {

  public static final int DEFAULT_CHUNK_BYTES = 1 << 20;
  public static final int DEFAULT_SOCKET_BUFFER_BYTES = 4 << 20;

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
  }

  /** 1 MiB chunks, 4 MiB socket buffers, 5 min I/O timeout, 2 min to join, session 0. */
  public static RingOptions defaults() {
    return new RingOptions(DEFAULT_CHUNK_BYTES, DEFAULT_SOCKET_BUFFER_BYTES,
        Duration.ofMinutes(5), Duration.ofMinutes(2), 0L);
  }

  public RingOptions withChunkBytes(int value) {
    return new RingOptions(value, socketBufferBytes, ioTimeout, connectTimeout, session);
  }

  public RingOptions withSocketBufferBytes(int value) {
    return new RingOptions(chunkBytes, value, ioTimeout, connectTimeout, session);
  }

  public RingOptions withIoTimeout(Duration value) {
    return new RingOptions(chunkBytes, socketBufferBytes, value, connectTimeout, session);
  }

  public RingOptions withConnectTimeout(Duration value) {
    return new RingOptions(chunkBytes, socketBufferBytes, ioTimeout, value, session);
  }

  public RingOptions withSession(long value) {
    return new RingOptions(chunkBytes, socketBufferBytes, ioTimeout, connectTimeout, value);
  }

  private static void requirePositive(Duration d, String name) {
    Objects.requireNonNull(d, name);
    if (d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(name + " must be positive (got " + d + ")");
    }
  }
}
