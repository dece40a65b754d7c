package io.sparkdpo.dist;

import java.io.Serializable;
import java.time.Duration;

/** The serialisable part of {@link RingOptions}, shipped to the tasks; the session is set per stage attempt. */
public record RingSettings(int chunkBytes, int socketBufferBytes, long ioTimeoutMillis, long connectTimeoutMillis)
    implements Serializable {

  public static RingSettings of(RingOptions options) {
    return new RingSettings(options.chunkBytes(), options.socketBufferBytes(), options.ioTimeout().toMillis(),
        options.connectTimeout().toMillis());
  }

  public static RingSettings defaults() {
    return of(RingOptions.defaults());
  }

  RingOptions toOptions(long session) {
    return new RingOptions(chunkBytes, socketBufferBytes, Duration.ofMillis(ioTimeoutMillis),
        Duration.ofMillis(connectTimeoutMillis), session);
  }
}
