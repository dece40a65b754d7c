package io.sparkdpo.distributed;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Builds the ring: rank r connects to rank r+1 and accepts rank r-1, and each pair authenticates with
 * {@link RingHandshake} (challenge and response over fresh nonces, keyed by the run's {@link RunSecret}) before any
 * ring data flows.
 *
 * <p>How the join runs, all on one thread and one selector:
 * <ol>
 *   <li>the dial to the right neighbour: connect, hello, proof, check its answer. Each attempt has
 *       {@link RingOptions#handshakeTimeout()}; a refused connection, a closed one or a wrong answer is retried every
 *       {@value #RETRY_PAUSE_MS} ms while the right rank comes up, until {@link RingOptions#connectTimeout()};
 *   <li>at the same time, every connection accepted on the listener is a candidate with its own handshake deadline,
 *       served concurrently (at most {@value #MAX_CANDIDATES} at once; a new one pushes out the oldest): an idle
 *       connection, garbage or a forged proof is dropped without a word when it fails or its deadline passes, and
 *       never holds up the others. The first candidate that proves to be the left neighbour is the left link; the
 *       listener then closes;
 *   <li>the join ends when both links have authenticated.
 * </ol>
 * A rank serves its listener while it dials, and dialling needs only the peer's kernel (its listen backlog) until
 * the peer serves in turn, so no ordering of ranks can deadlock.
 */
final class RingRendezvous {

  private static final Logger LOG = LoggerFactory.getLogger(RingRendezvous.class);
  static final int MAX_CANDIDATES = 32;
  private static final long RETRY_PAUSE_MS = 100;
  private static final int DROPS_SHOWN = 4;

  private final int rank;
  private final int world;
  private final int leftRank;
  private final int rightRank;
  private final List<InetSocketAddress> addresses;
  private final RingOptions options;
  private final long deadline;
  private final long handshakeNanos;

  private final Deque<Candidate> candidates = new ArrayDeque<>();
  private Dial dial;
  private long nextDialAt;
  private int dialAttempts;
  private String lastDialError = "none";
  private SocketChannel left;
  private SocketChannel right;
  private int dropped;
  private final Deque<String> recentDrops = new ArrayDeque<>();

  private RingRendezvous(int rank, List<InetSocketAddress> addresses, RingOptions options) {
    this.rank = rank;
    this.world = addresses.size();
    this.leftRank = Math.floorMod(rank - 1, world);
    this.rightRank = (rank + 1) % world;
    this.addresses = addresses;
    this.options = options;
    this.nextDialAt = System.nanoTime();
    this.deadline = nextDialAt + options.connectTimeout().toNanos();
    this.handshakeNanos = options.handshakeTimeout().toNanos();
  }

  /** A listener on an ephemeral port, with the receive buffer set before bind so TCP can scale its window. */
  static ServerSocketChannel openListener(InetAddress bindAddress, RingOptions options)
      throws IOException {
    ServerSocketChannel listener = ServerSocketChannel.open();
    try {
      if (options.socketBufferBytes() > 0) {
        listener.setOption(StandardSocketOptions.SO_RCVBUF, options.socketBufferBytes());
      }
      listener.bind(new InetSocketAddress(bindAddress, 0), 64);
      return listener;
    } catch (IOException | RuntimeException e) {
      listener.close();
      throw e;
    }
  }

  /** Joins the ring as {@code rank}; closes {@code listener} whatever happens. */
  static RingLinks connect(int rank, List<InetSocketAddress> addresses,
      ServerSocketChannel listener, RingOptions options) {
    return new RingRendezvous(rank, addresses, options).join(listener);
  }

  private RingLinks join(ServerSocketChannel listener) {
    try {
      try (listener; Selector selector = Selector.open()) {
        authenticateBoth(listener, selector);
      } // closing the selector deregisters the links, which RingLinks registers on its own
      if (dropped > 0) {
        LOG.warn("rank {} of {}: dropped {} unauthenticated connection(s) to the ring listener while joining{}",
            rank, world, dropped, drops());
      }
      RingLinks links = new RingLinks(rank, world, left, addresses.get(leftRank), right,
          addresses.get(rightRank), options);
      left = null;
      right = null;
      return links;
    } catch (IOException e) {
      throw failure(-1, "could not set up the ring: " + e.getMessage(), e);
    } finally {
      closeQuietly(left);
      closeQuietly(right);
      if (dial != null) {
        closeQuietly(dial.channel);
      }
      candidates.forEach(c -> closeQuietly(c.channel));
    }
  }

  private void authenticateBoth(ServerSocketChannel listener, Selector selector) throws IOException {
    listener.configureBlocking(false);
    SelectionKey acceptKey = listener.register(selector, SelectionKey.OP_ACCEPT);
    while (left == null || right == null) {
      if (Thread.currentThread().isInterrupted()) {
        throw new CollectiveException("rank " + rank + " of " + world + ", connect: interrupted while waiting"
            + " for peers", -1, null);
      }
      long now = System.nanoTime();
      if (right == null && dial == null && now - nextDialAt >= 0) {
        startDial(selector, now);
      }
      expire(now);
      if (now - deadline >= 0) {
        throw timedOut();
      }
      selector.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(nextWake(now) - now)));
      for (SelectionKey key : selector.selectedKeys()) {
        if (key == acceptKey) {
          acceptAll(listener, selector);
        } else if (key.isValid()) {
          ((Exchange) key.attachment()).advance();
        }
      }
      selector.selectedKeys().clear();
      if (left != null && acceptKey.isValid()) {
        acceptKey.cancel();
        listener.close(); // the ring is closed to newcomers: later dials are refused by the kernel
        while (!candidates.isEmpty()) {
          drop(candidates.peekFirst(), "the left neighbour had already authenticated");
        }
      }
    }
  }

  private void startDial(Selector selector, long now) {
    dialAttempts++;
    SocketChannel channel = null;
    try {
      InetSocketAddress address = addresses.get(rightRank);
      InetSocketAddress target = address.isUnresolved()
          ? new InetSocketAddress(address.getHostString(), address.getPort()) : address;
      if (target.isUnresolved()) {
        throw new IOException("cannot resolve host " + address.getHostString());
      }
      channel = SocketChannel.open();
      configure(channel);
      channel.configureBlocking(false);
      dial = new Dial(channel, Math.min(now + handshakeNanos - deadline, 0) + deadline);
      dial.key = channel.register(selector, SelectionKey.OP_CONNECT, dial);
      if (channel.connect(target)) {
        dial.advance();
      }
    } catch (IOException e) {
      if (dial == null) {
        closeQuietly(channel);
        nextDialAt = now + TimeUnit.MILLISECONDS.toNanos(RETRY_PAUSE_MS);
        lastDialError = String.valueOf(e.getMessage());
      } else {
        dialFailed(e.getMessage());
      }
    }
  }

  private void acceptAll(ServerSocketChannel listener, Selector selector) throws IOException {
    long now = System.nanoTime();
    // Bounded per wake-up, so a flood of connections cannot keep the dial or the candidates from being served.
    for (int i = 0; i < MAX_CANDIDATES; i++) {
      SocketChannel channel = listener.accept();
      if (channel == null) {
        return;
      }
      if (candidates.size() >= MAX_CANDIDATES) {
        drop(candidates.peekFirst(), "pushed out by newer connections");
      }
      Candidate candidate = new Candidate(channel, now + handshakeNanos);
      candidates.addLast(candidate);
      try {
        configure(channel);
        channel.configureBlocking(false);
        candidate.key = channel.register(selector, SelectionKey.OP_READ, candidate);
      } catch (IOException e) {
        drop(candidate, e.getMessage());
      }
    }
  }

  private void expire(long now) {
    if (dial != null && now - dial.deadline >= 0) {
      dialFailed("no answer within the handshake timeout (" + options.handshakeTimeout().toMillis() + " ms)");
    }
    // Candidates are kept in accept order and share one timeout, so the expired ones come first.
    while (!candidates.isEmpty() && now - candidates.peekFirst().deadline >= 0) {
      drop(candidates.peekFirst(), "did not authenticate within the handshake timeout ("
          + options.handshakeTimeout().toMillis() + " ms)");
    }
  }

  private long nextWake(long now) {
    long wake = deadline;
    if (dial != null) {
      wake = earlier(wake, dial.deadline);
    } else if (right == null) {
      wake = earlier(wake, nextDialAt);
    }
    if (!candidates.isEmpty()) {
      wake = earlier(wake, candidates.peekFirst().deadline);
    }
    return wake - now < 0 ? now : wake;
  }

  private static long earlier(long a, long b) {
    return a - b <= 0 ? a : b;
  }

  private CollectiveException timedOut() {
    if (right == null) {
      return failure(rightRank, "could not connect to " + peer(rightRank) + " within the connect timeout ("
          + dialAttempts + " attempts, last error: " + lastDialError + ")", null);
    }
    return failure(leftRank, peer(leftRank) + " did not connect within the connect timeout"
        + (dropped == 0 ? "" : "; dropped " + dropped + " unauthenticated connection(s)" + drops()), null);
  }

  private void dialFailed(String why) {
    closeQuietly(dial.channel);
    dial = null;
    lastDialError = why;
    nextDialAt = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RETRY_PAUSE_MS);
  }

  /** Closes a candidate without telling it anything, and remembers why for the log and for a timeout's message. */
  private void drop(Candidate candidate, String why) {
    candidates.remove(candidate);
    String who = describe(candidate.channel);
    closeQuietly(candidate.channel);
    dropped++;
    if (recentDrops.size() == DROPS_SHOWN) {
      recentDrops.removeFirst();
    }
    recentDrops.addLast(who + ": " + why);
  }

  private String drops() {
    return " (latest: " + String.join("; ", recentDrops) + ")";
  }

  private void configure(SocketChannel channel) throws IOException {
    channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
    channel.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
    if (options.socketBufferBytes() > 0) {
      channel.setOption(StandardSocketOptions.SO_SNDBUF, options.socketBufferBytes());
      channel.setOption(StandardSocketOptions.SO_RCVBUF, options.socketBufferBytes());
    }
  }

  private String peer(int peer) {
    return "rank " + peer + " at " + addresses.get(peer);
  }

  private CollectiveException failure(int peer, String what, Throwable cause) {
    return new CollectiveException("rank " + rank + " of " + world + ", connect: " + what, peer,
        cause);
  }

  private static String describe(SocketChannel channel) {
    try {
      return String.valueOf(channel.getRemoteAddress());
    } catch (IOException e) {
      return "a connection";
    }
  }

  private static void closeQuietly(AutoCloseable c) {
    if (c == null) {
      return;
    }
    try {
      c.close();
    } catch (Exception ignored) {
      // Best effort: the channel is being discarded.
    }
  }

  /**
   * One side of a handshake in progress: writes {@code out}, then fills {@code in}, then hands it to
   * {@link #received}, which sets the next pair; with neither left the handshake is complete.
   */
  private abstract static class Exchange {
    final SocketChannel channel;
    final long deadline;
    SelectionKey key;
    ByteBuffer out;
    ByteBuffer in;

    Exchange(SocketChannel channel, long deadline) {
      this.channel = channel;
      this.deadline = deadline;
    }

    /** Moves as far as the socket allows without blocking; failures end this handshake only. */
    final void advance() {
      try {
        if (!ready()) {
          return;
        }
        while (out != null || in != null) {
          if (out != null) {
            channel.write(out);
            if (out.hasRemaining()) {
              key.interestOps(SelectionKey.OP_WRITE);
              return;
            }
            out = null;
          } else {
            if (channel.read(in) < 0) {
              throw new IOException("closed the connection during the handshake");
            }
            if (in.hasRemaining()) {
              key.interestOps(SelectionKey.OP_READ);
              return;
            }
            ByteBuffer full = in.flip();
            in = null;
            received(full);
          }
        }
        key.cancel();
        completed();
      } catch (IOException e) {
        failed(e.getMessage());
      }
    }

    /** False while a prerequisite (the TCP connect) is still pending. */
    boolean ready() throws IOException {
      return true;
    }

    abstract void received(ByteBuffer message) throws IOException;

    abstract void completed();

    abstract void failed(String why);
  }

  /** This rank dialling its right neighbour. */
  private final class Dial extends Exchange {
    private final byte[] nonce = RunSecret.nonce(RingHandshake.NONCE_BYTES);
    private byte[] listenerNonce;

    Dial(SocketChannel channel, long deadline) {
      super(channel, deadline);
    }

    @Override
    boolean ready() throws IOException {
      if (channel.isConnectionPending()) {
        if (!channel.finishConnect()) {
          return false;
        }
      }
      if (listenerNonce == null && out == null && in == null) {
        out = RingHandshake.hello(nonce);
        in = ByteBuffer.allocate(RingHandshake.NONCE_BYTES);
      }
      return true;
    }

    @Override
    void received(ByteBuffer message) throws IOException {
      if (listenerNonce == null) {
        listenerNonce = bytes(message);
        out = ByteBuffer.wrap(RingHandshake.connectorProof(options.secret(), nonce, listenerNonce,
            options.session(), world, rank, rightRank));
        in = ByteBuffer.allocate(RingHandshake.PROOF_BYTES);
        return;
      }
      byte[] expected = RingHandshake.listenerProof(options.secret(), nonce, listenerNonce, options.session(),
          world, rightRank, rank);
      if (!RunSecret.matches(expected, bytes(message))) {
        throw new IOException("the listener answered with a wrong proof: it is not rank " + rightRank
            + " of this run and attempt");
      }
    }

    @Override
    void completed() {
      right = channel;
      dial = null;
    }

    @Override
    void failed(String why) {
      if (listenerNonce != null && why != null && why.startsWith("closed the connection")) {
        why = "closed the connection after our proof: it holds another run's secret or another session";
      }
      dialFailed(why);
    }
  }

  /** A connection accepted on the listener, until it proves to be the left neighbour or is dropped. */
  private final class Candidate extends Exchange {
    private byte[] connectorNonce;
    private byte[] listenerNonce;

    Candidate(SocketChannel channel, long deadline) {
      super(channel, deadline);
      in = ByteBuffer.allocate(RingHandshake.HELLO_BYTES);
    }

    @Override
    void received(ByteBuffer message) throws IOException {
      if (connectorNonce == null) {
        connectorNonce = RingHandshake.connectorNonce(message);
        if (connectorNonce == null) {
          throw new IOException("not a ring hello of this version");
        }
        listenerNonce = RunSecret.nonce(RingHandshake.NONCE_BYTES);
        out = ByteBuffer.wrap(listenerNonce.clone());
        in = ByteBuffer.allocate(RingHandshake.PROOF_BYTES);
        return;
      }
      byte[] expected = RingHandshake.connectorProof(options.secret(), connectorNonce, listenerNonce,
          options.session(), world, leftRank, rank);
      if (!RunSecret.matches(expected, bytes(message))) {
        throw new IOException("wrong proof (another secret, session, world size or rank)");
      }
      out = ByteBuffer.wrap(RingHandshake.listenerProof(options.secret(), connectorNonce, listenerNonce,
          options.session(), world, rank, leftRank));
    }

    @Override
    void completed() {
      if (left != null) { // a second proof from the left neighbour in the same wake-up: the first one is the link
        drop(this, "the left neighbour had already authenticated");
        return;
      }
      candidates.remove(this);
      left = channel;
    }

    @Override
    void failed(String why) {
      drop(this, why);
    }
  }

  private static byte[] bytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.get(out);
    return out;
  }
}
