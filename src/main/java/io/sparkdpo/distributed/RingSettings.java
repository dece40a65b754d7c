package io.sparkdpo.distributed;

import io.sparkdpo.config.OptimizationSettings;
import java.io.Serializable;
import java.time.Duration;

/**
 * The serialisable part of {@link RingOptions}, shipped to the tasks; the session is set per stage attempt, and the
 * secret travels on its own ({@link WorkerSpec#secret()}).
 */
public record RingSettings(int chunkBytes, int socketBufferBytes, long ioTimeoutMillis, long connectTimeoutMillis,
    long rankZeroTimeoutMillis, long handshakeTimeoutMillis, long peerTimeoutMillis) implements Serializable {

  public static RingSettings of(RingOptions options) {
    return new RingSettings(options.chunkBytes(), options.socketBufferBytes(), options.ioTimeout().toMillis(),
        options.connectTimeout().toMillis(), options.rankZeroTimeout().toMillis(),
        options.handshakeTimeout().toMillis(), options.peerTimeout().toMillis());
  }

  public static RingSettings defaults() {
    return of(RingOptions.defaults());
  }

  /**
   * The default chunk and socket sizes with a stage's timeouts: {@code ring_io_timeout_s},
   * {@code ring_connect_timeout_s}, {@code save_timeout_s} (rank 0 verifying or writing a checkpoint) and
   * {@code ring_handshake_timeout_s} and {@code ring_peer_timeout_s} (capped at the I/O timeout, so lowering that
   * alone keeps them coherent).
   */
  public static RingSettings of(OptimizationSettings stage) {
    return of(RingOptions.defaults().withIoTimeout(Duration.ofSeconds(stage.ringIoTimeoutS()))
        .withConnectTimeout(Duration.ofSeconds(stage.ringConnectTimeoutS()))
        .withRankZeroTimeout(Duration.ofSeconds(stage.saveTimeoutS()))
        .withHandshakeTimeout(Duration.ofSeconds(stage.ringHandshakeTimeoutS()))
        .withPeerTimeout(Duration.ofSeconds(Math.min(stage.ringPeerTimeoutS(), stage.ringIoTimeoutS()))));
  }

  RingOptions toOptions(long session, RunSecret secret) {
    return new RingOptions(chunkBytes, socketBufferBytes, Duration.ofMillis(ioTimeoutMillis),
        Duration.ofMillis(connectTimeoutMillis), Duration.ofMillis(rankZeroTimeoutMillis), session, secret,
        Duration.ofMillis(handshakeTimeoutMillis), Duration.ofMillis(peerTimeoutMillis));
  }
}
