package io.sparkdpo.dist;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SelectableChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Builds the ring: rank r connects to rank r+1 and accepts rank r-1.
 *
 * <p>Order: (1) connect to the right and send a greeting, retrying while the right rank's listener
 * is not up yet; (2) accept from the left, check its greeting, answer with ours; (3) read the right
 * rank's answer. Steps 1 and 2 need only the peers' kernels (listen backlogs), never their threads,
 * so no ordering of ranks can deadlock. Greetings carry session, world size and both ranks, so a
 * stray or stale connection is refused rather than joined.
 */
final class RingRendezvous {

  private static final int MAGIC = 0x52494E47; // "RING"
  private static final int VERSION = 1;
  private static final int GREETING_BYTES = 28;
  private static final long RETRY_PAUSE_MS = 100;

  private final int rank;
  private final int world;
  private final List<InetSocketAddress> addresses;
  private final RingOptions options;
  private final long deadline;

  private RingRendezvous(int rank, List<InetSocketAddress> addresses, RingOptions options) {
    this.rank = rank;
    this.world = addresses.size();
    this.addresses = addresses;
    this.options = options;
    this.deadline = System.nanoTime() + options.connectTimeout().toNanos();
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
    int rightRank = (rank + 1) % world;
    int leftRank = Math.floorMod(rank - 1, world);
    SocketChannel right = null;
    SocketChannel left = null;
    try (listener) {
      right = connectWithRetries(rightRank);
      writeFully(right, new Greeting(options.session(), world, rank, rightRank).encode(), rightRank);
      left = acceptFrom(leftRank, listener);
      checkAnswer(right, rightRank);
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
    }
  }

  private SocketChannel connectWithRetries(int peer) {
    InetSocketAddress address = addresses.get(peer);
    IOException last = null;
    int attempts = 0;
    while (true) {
      attempts++;
      SocketChannel channel = null;
      try {
        InetSocketAddress target = address.isUnresolved()
            ? new InetSocketAddress(address.getHostString(), address.getPort()) : address;
        if (target.isUnresolved()) {
          throw new IOException("cannot resolve host " + address.getHostString());
        }
        channel = SocketChannel.open();
        configure(channel);
        channel.configureBlocking(false);
        if (!channel.connect(target)) {
          await(channel, SelectionKey.OP_CONNECT);
          if (!channel.finishConnect()) {
            throw new IOException("connect did not complete");
          }
        }
        return channel;
      } catch (IOException e) {
        closeQuietly(channel);
        last = e;
      }
      long remainingMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
      if (remainingMs <= 0) {
        throw failure(peer, "could not connect to " + peer(peer) + " within the connect timeout ("
            + attempts + " attempts, last error: " + last.getMessage() + ")", last);
      }
      sleep(Math.min(RETRY_PAUSE_MS, remainingMs));
    }
  }

  /** Accepts until the expected left neighbour greets us, refusing strays and stale sessions. */
  private SocketChannel acceptFrom(int peer, ServerSocketChannel listener) throws IOException {
    Greeting expected = new Greeting(options.session(), world, peer, rank);
    Greeting mine = new Greeting(options.session(), world, rank, peer);
    String refusals = "";
    listener.configureBlocking(false);
    while (true) {
      SocketChannel candidate = listener.accept();
      if (candidate == null) {
        if (!await(listener, SelectionKey.OP_ACCEPT)) {
          throw failure(peer, peer(peer) + " did not connect within the connect timeout"
              + refusals, null);
        }
        continue;
      }
      try {
        configure(candidate);
        candidate.configureBlocking(false);
        String mismatch = Greeting.decode(readFully(candidate, peer)).mismatch(expected);
        // Answer even a mismatch with who we are, so the other side can say what is wrong.
        writeFully(candidate, mine.encode(), peer);
        if (mismatch == null) {
          return candidate;
        }
        refusals += "; refused " + describe(candidate) + ": " + mismatch;
      } catch (CollectiveException | IOException e) {
        refusals += "; dropped " + describe(candidate) + ": " + e.getMessage();
      }
      closeQuietly(candidate);
    }
  }

  private void checkAnswer(SocketChannel right, int peer) {
    String mismatch;
    try {
      mismatch = Greeting.decode(readFully(right, peer))
          .mismatch(new Greeting(options.session(), world, peer, rank));
    } catch (IOException e) {
      mismatch = e.getMessage();
    }
    if (mismatch != null) {
      throw failure(peer, "the listener at " + addresses.get(peer) + " is not rank " + peer
          + " of this group: " + mismatch, null);
    }
  }

  private void configure(SocketChannel channel) throws IOException {
    channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
    channel.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
    if (options.socketBufferBytes() > 0) {
      channel.setOption(StandardSocketOptions.SO_SNDBUF, options.socketBufferBytes());
      channel.setOption(StandardSocketOptions.SO_RCVBUF, options.socketBufferBytes());
    }
  }

  private ByteBuffer readFully(SocketChannel channel, int peer) throws IOException {
    ByteBuffer buffer = ByteBuffer.allocate(GREETING_BYTES);
    while (buffer.hasRemaining()) {
      int n = channel.read(buffer);
      if (n < 0) {
        throw failure(peer, peer(peer) + " closed the connection during the handshake", null);
      }
      if (n == 0 && !await(channel, SelectionKey.OP_READ)) {
        throw failure(peer, peer(peer) + " did not complete the handshake within the connect"
            + " timeout", null);
      }
    }
    return buffer.flip();
  }

  private void writeFully(SocketChannel channel, ByteBuffer buffer, int peer) throws IOException {
    while (buffer.hasRemaining()) {
      if (channel.write(buffer) == 0 && !await(channel, SelectionKey.OP_WRITE)) {
        throw failure(peer, peer(peer) + " did not take the handshake within the connect timeout",
            null);
      }
    }
  }

  /** Waits until the channel is ready for {@code op}; false once the deadline has passed. */
  private boolean await(SelectableChannel channel, int op) throws IOException {
    long remainingMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
    if (remainingMs <= 0) {
      return false;
    }
    try (Selector selector = Selector.open()) {
      channel.register(selector, op);
      return selector.select(remainingMs) > 0 || System.nanoTime() - deadline < 0;
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

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CollectiveException("connect: interrupted while waiting for peers", -1, e);
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

  /** The first message on a ring connection, in both directions: who is speaking, to whom. */
  private record Greeting(long session, int worldSize, int fromRank, int toRank) {

    ByteBuffer encode() {
      return ByteBuffer.allocate(GREETING_BYTES).order(ByteOrder.LITTLE_ENDIAN)
          .putInt(MAGIC).putInt(VERSION).putLong(session).putInt(worldSize).putInt(fromRank)
          .putInt(toRank).flip();
    }

    static Greeting decode(ByteBuffer in) throws IOException {
      in.order(ByteOrder.LITTLE_ENDIAN);
      int magic = in.getInt();
      int version = in.getInt();
      if (magic != MAGIC) {
        throw new IOException("not a spark-dpo ring peer (bad greeting)");
      }
      if (version != VERSION) {
        throw new IOException("ring protocol version " + version + ", expected " + VERSION);
      }
      return new Greeting(in.getLong(), in.getInt(), in.getInt(), in.getInt());
    }

    /** Null when this greeting is the expected one, else what differs. */
    String mismatch(Greeting expected) {
      if (session != expected.session) {
        return "session " + session + ", expected " + expected.session;
      }
      if (worldSize != expected.worldSize) {
        return "world size " + worldSize + ", expected " + expected.worldSize;
      }
      if (fromRank != expected.fromRank || toRank != expected.toRank) {
        return "rank " + fromRank + " addressing rank " + toRank + ", expected rank "
            + expected.fromRank + " addressing rank " + expected.toRank;
      }
      return null;
    }
  }
}
