package io.sparkdpo.distributed;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The messages of the ring's authenticated handshake, from the rank that dials (the connector, rank r) to the rank
 * it dials (the listener, rank r + 1); {@link RingRendezvous} drives them over the sockets. Every message has a fixed
 * size, so a peer never decides how much we read.
 * <ol>
 *   <li>connector: {@code HELLO} = magic, version, a fresh nonce {@code Nc} ({@value #HELLO_BYTES} bytes);
 *   <li>listener, only after a well-formed hello: a fresh nonce {@code Nl} ({@value #NONCE_BYTES} random bytes,
 *       nothing else);
 *   <li>connector: its proof, {@code HMAC(secret, "connect", Nc, Nl, session, world size, r, r + 1)};
 *   <li>listener: checks it in constant time; if it is wrong, closes without a word; else answers with its own proof,
 *       {@code HMAC(secret, "accept", Nc, Nl, session, world size, r + 1, r)};
 *   <li>connector: checks the answer; the connection is then the ring link r to r + 1.
 * </ol>
 * Both nonces are fresh, so a proof recorded in one handshake is worthless in any other; the role word and the
 * ranks keep a proof from serving in the other direction or between other ranks; session and world size keep it
 * from serving in another group (a straggler of an earlier attempt holds the same secret but another session). The
 * secret itself never crosses the wire, and a peer that has not proved it holds it learns nothing but a random
 * nonce: not the session, not the ranks.
 */
final class RingHandshake {

  static final int MAGIC = 0x52494E47; // "RING"
  /** 1 was the unauthenticated greeting (session, world size, ranks in clear). */
  static final int VERSION = 2;
  static final int NONCE_BYTES = 32;
  static final int HELLO_BYTES = 8 + NONCE_BYTES;
  static final int PROOF_BYTES = RunSecret.MAC_BYTES;
  private static final String CONNECT = "spark-dpo ring v2 connect";
  private static final String ACCEPT = "spark-dpo ring v2 accept";

  private RingHandshake() {}

  static ByteBuffer hello(byte[] connectorNonce) {
    return ByteBuffer.allocate(HELLO_BYTES).order(ByteOrder.LITTLE_ENDIAN)
        .putInt(MAGIC).putInt(VERSION).put(connectorNonce).flip();
  }

  /** The connector's nonce of a well-formed hello, or null for anything else (then the listener stays silent). */
  static byte[] connectorNonce(ByteBuffer hello) {
    ByteBuffer in = hello.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    if (in.remaining() != HELLO_BYTES || in.getInt() != MAGIC || in.getInt() != VERSION) {
      return null;
    }
    byte[] nonce = new byte[NONCE_BYTES];
    in.get(nonce);
    return nonce;
  }

  /** What rank {@code from} (the connector) sends to prove it holds the secret, addressing rank {@code to}. */
  static byte[] connectorProof(RunSecret secret, byte[] connectorNonce, byte[] listenerNonce, long session,
      int world, int from, int to) {
    return proof(secret, CONNECT, connectorNonce, listenerNonce, session, world, from, to);
  }

  /** What the listener, rank {@code from}, answers the connector, rank {@code to}, once it believed it. */
  static byte[] listenerProof(RunSecret secret, byte[] connectorNonce, byte[] listenerNonce, long session,
      int world, int from, int to) {
    return proof(secret, ACCEPT, connectorNonce, listenerNonce, session, world, from, to);
  }

  private static byte[] proof(RunSecret secret, String role, byte[] connectorNonce, byte[] listenerNonce,
      long session, int world, int from, int to) {
    return secret.mac(role, connectorNonce, listenerNonce, RunSecret.longBytes(session, world, from, to));
  }
}
