package io.sparkdpo.distributed;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * What someone who can reach a ring listener but does not hold the run's secret can do: hold connections open, send
 * garbage or an old-style greeting, or run the handshake with a forged proof. Records every byte it is told.
 */
final class RingIntruder {

  private RingIntruder() {}

  /** A connection that never says anything. */
  static Socket idle(InetSocketAddress listener) throws IOException {
    Socket s = new Socket();
    s.connect(listener, 5_000);
    return s;
  }

  /** A connection that sends {@code bytes} and then waits. */
  static Socket sending(InetSocketAddress listener, byte[] bytes) throws IOException {
    Socket s = idle(listener);
    s.getOutputStream().write(bytes);
    s.getOutputStream().flush();
    return s;
  }

  /** Version 1's greeting (which used to be answered with the listener's own): session, world size, from, to. */
  static byte[] oldGreeting(long session, int world, int from, int to) {
    return ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN).putInt(RingHandshake.MAGIC).putInt(1)
        .putLong(session).putInt(world).putInt(from).putInt(to).array();
  }

  /** What a listener said to a forged handshake: its nonce (before our proof) and anything after it. */
  record Told(byte[] nonce, byte[] afterProof) {}

  /**
   * Sends a hello, reads the listener's nonce, sends the proof {@code forge} computes from the two nonces, then
   * reads until the listener closes.
   */
  static Told handshake(InetSocketAddress listener, byte[] connectorNonce, Forger forge) throws IOException {
    return prove(sending(listener, RingHandshake.hello(connectorNonce).array()), connectorNonce, forge);
  }

  /** The rest of {@link #handshake} on a connection that has sent its hello; closes it. */
  static Told prove(Socket hello, byte[] connectorNonce, Forger forge) throws IOException {
    try (Socket s = hello) {
      s.setSoTimeout(5_000);
      byte[] nonce = s.getInputStream().readNBytes(RingHandshake.NONCE_BYTES);
      s.getOutputStream().write(forge.proof(connectorNonce, nonce));
      s.getOutputStream().flush();
      return new Told(nonce, untilClosed(s));
    }
  }

  /** Computes a proof from the two nonces. */
  interface Forger {
    byte[] proof(byte[] connectorNonce, byte[] listenerNonce);
  }

  /** Every byte the peer sends until it closes the connection; fails if it neither speaks nor closes in 5 s. */
  static byte[] untilClosed(Socket s) throws IOException {
    s.setSoTimeout(5_000);
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    InputStream in = s.getInputStream();
    byte[] buf = new byte[256];
    try {
      for (int n; (n = in.read(buf)) >= 0; ) {
        got.write(buf, 0, n);
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the listener kept the connection open for 5 s (received "
          + Arrays.toString(got.toByteArray()) + ")", e);
    } catch (SocketException e) {
      // Reset: the listener closed with our unread bytes in its buffer. Closed all the same.
    }
    return got.toByteArray();
  }

  static void closeAll(Iterable<Socket> sockets) {
    for (Socket s : sockets) {
      try {
        s.close();
      } catch (IOException ignored) {
        // Discarded anyway.
      }
    }
  }
}
