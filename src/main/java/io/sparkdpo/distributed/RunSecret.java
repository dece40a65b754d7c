package io.sparkdpo.distributed;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Objects;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The one secret of a distributed run, shared by the driver's tracker and every rank's ring links (Horovod's
 * authenticated driver/task services): peers prove they hold it with an HMAC over fresh nonces and what they
 * claim to be, so the key itself never crosses a socket of ours. It reaches the tasks inside the serialised task,
 * as Spark's own RPC carries it (encrypted when {@code spark.network.crypto.enabled=true}).
 *
 * <p>{@link #toString()} never shows the key, so a record holding one can be logged.
 */
public final class RunSecret implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final String HMAC = "HmacSHA256";
  /** 256 bits, the HMAC-SHA256 block's natural key size. */
  public static final int KEY_BYTES = 32;
  /** Length of {@link #mac} results. */
  public static final int MAC_BYTES = 32;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final byte[] key;

  private RunSecret(byte[] key) {
    this.key = key;
  }

  /** A fresh key from {@link SecureRandom}. */
  public static RunSecret random() {
    byte[] key = new byte[KEY_BYTES];
    RANDOM.nextBytes(key);
    return new RunSecret(key);
  }

  /**
   * A key derived from another secret (Spark's {@code spark.authenticate} secret) and the run, so every run gets
   * its own key while only Spark's secret has to be distributed.
   */
  public static RunSecret derivedFrom(byte[] baseSecret, String runId) {
    Objects.requireNonNull(baseSecret, "baseSecret");
    if (baseSecret.length == 0) {
      throw new IllegalArgumentException("an empty secret cannot key a run");
    }
    return new RunSecret(hmac(baseSecret, "spark-dpo run key".getBytes(StandardCharsets.UTF_8),
        runId.getBytes(StandardCharsets.UTF_8)));
  }

  /** {@code n} fresh random bytes, for a challenge. */
  public static byte[] nonce(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  /**
   * HMAC-SHA256 under this key of {@code purpose} and {@code parts}, each length-prefixed so no two different
   * lists of parts give the same input.
   */
  public byte[] mac(String purpose, byte[]... parts) {
    byte[][] all = new byte[parts.length + 1][];
    all[0] = purpose.getBytes(StandardCharsets.UTF_8);
    System.arraycopy(parts, 0, all, 1, parts.length);
    return hmac(key, all);
  }

  /** Whether {@code presented} equals {@code expected}, in time that does not depend on where they differ. */
  public static boolean matches(byte[] expected, byte[] presented) {
    return presented != null && MessageDigest.isEqual(expected, presented);
  }

  /** Convenience for the protocol's fixed-width fields. */
  public static byte[] longBytes(long... values) {
    ByteBuffer b = ByteBuffer.allocate(Long.BYTES * values.length);
    for (long v : values) {
      b.putLong(v);
    }
    return b.array();
  }

  private static byte[] hmac(byte[] key, byte[]... parts) {
    try {
      Mac mac = Mac.getInstance(HMAC);
      mac.init(new SecretKeySpec(key, HMAC));
      ByteBuffer len = ByteBuffer.allocate(Integer.BYTES);
      for (byte[] p : parts) {
        len.clear();
        mac.update(len.putInt(p.length).array());
        mac.update(p);
      }
      return mac.doFinal();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is part of every Java 17 runtime", e);
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof RunSecret other && MessageDigest.isEqual(key, other.key);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(mac("hash"));
  }

  @Override
  public String toString() {
    return "RunSecret(redacted)";
  }
}
