package io.sparkdpo.distributed;

import io.sparkdpo.io.Json;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver tracker's front door: ONE selector thread accepts every connection and runs its handshake, so a peer
 * gets no thread of its own until it has proved it holds the run's secret. For each connection:
 * <ol>
 *   <li>accept; when {@link TrackerLimits#maxPendingHandshakes} handshakes are already open, drop the oldest (a
 *       flood of idle sockets only cycles through the slots; a real rank answers within milliseconds);</li>
 *   <li>send a {@link TrackerEvent#challenge} with 32 fresh random bytes;</li>
 *   <li>read the hello into a buffer of {@link TrackerLimits#maxHelloBytes}: a line that does not fit, an end of
 *       stream, or no complete line within {@link TrackerLimits#helloTimeout} of the accept drops the connection;</li>
 *   <li>ask the {@link Door}: a refusal is written back (it says nothing about the run's secret or session) and the
 *       connection closed; an admitted one leaves the selector in blocking mode and is handed over with any bytes
 *       read past the hello.</li>
 * </ol>
 */
final class TrackerGate implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(TrackerGate.class);
  static final int NONCE_BYTES = 32;

  /** Decides on hellos and takes over admitted connections. */
  interface Door {
    /** Why this hello, answering {@code nonce}, is refused, or null to admit. Runs on the gate's thread: be quick. */
    String refusal(TrackerEvent hello, byte[] nonce);

    /** Takes an admitted connection, now in blocking mode; {@code rest} was sent after the hello. */
    void admit(SocketChannel channel, TrackerEvent hello, byte[] rest);
  }

  private final ServerSocketChannel server;
  private final Selector selector;
  private final TrackerLimits limits;
  private final Door door;
  /** Open handshakes in accept order, which is also deadline order. */
  private final Map<SocketChannel, Handshake> pending = new LinkedHashMap<>();
  private final AtomicLong dropped = new AtomicLong();
  private final Thread thread;
  private volatile boolean closed;

  private static final class Handshake {
    final SocketChannel channel;
    final SocketAddress peer;
    final byte[] nonce = RunSecret.nonce(NONCE_BYTES);
    final long deadline;
    final ByteBuffer out;
    final ByteBuffer in;
    /** Set once the hello arrived and was admitted: it ends at {@code in}'s byte {@code helloEnd} (the newline). */
    TrackerEvent hello;
    int helloEnd;

    Handshake(SocketChannel channel, SocketAddress peer, long deadline, int helloBytes) {
      this.channel = channel;
      this.peer = peer;
      this.deadline = deadline;
      String line = TrackerGate.line(TrackerEvent.challenge(HexFormat.of().formatHex(nonce)));
      this.out = ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8));
      this.in = ByteBuffer.allocate(helloBytes);
    }
  }

  private TrackerGate(ServerSocketChannel server, Selector selector, TrackerLimits limits, Door door) {
    this.server = server;
    this.selector = selector;
    this.limits = limits;
    this.door = door;
    this.thread = new Thread(this::run, "spark-dpo-tracker-gate");
    thread.setDaemon(true);
  }

  /** Listens on an ephemeral port of {@code bind} and starts the gate's thread. */
  static TrackerGate open(InetSocketAddress bind, TrackerLimits limits, Door door) throws IOException {
    ServerSocketChannel server = ServerSocketChannel.open();
    Selector selector = null;
    try {
      server.bind(bind, 128);
      server.configureBlocking(false);
      selector = Selector.open();
      server.register(selector, SelectionKey.OP_ACCEPT);
    } catch (IOException | RuntimeException e) {
      server.close();
      if (selector != null) {
        selector.close();
      }
      throw e;
    }
    TrackerGate gate = new TrackerGate(server, selector, limits, door);
    gate.thread.start();
    return gate;
  }

  int port() {
    return server.socket().getLocalPort();
  }

  /** Connections dropped or refused before admission so far. */
  long dropped() {
    return dropped.get();
  }

  private void run() {
    try {
      while (!closed) {
        selector.select(waitMillis());
        List<Handshake> admitted = new ArrayList<>();
        Iterator<SelectionKey> keys = selector.selectedKeys().iterator();
        while (keys.hasNext()) {
          SelectionKey key = keys.next();
          keys.remove();
          if (!key.isValid()) {
            continue;
          }
          if (key.isAcceptable()) {
            acceptAll();
          } else if (key.attachment() instanceof Handshake h) {
            if (key.isWritable()) {
              sendChallenge(h, key);
            }
            if (key.isValid() && key.isReadable() && readHello(h)) {
              admitted.add(h);
            }
          }
        }
        handOver(admitted);
        expire();
      }
    } catch (IOException | RuntimeException e) {
      if (!closed) {
        LOG.warn("the tracker stopped accepting connections: {}", e.toString());
      }
    } finally {
      for (Handshake h : List.copyOf(pending.values())) {
        closeQuietly(h.channel);
      }
      pending.clear();
      closeQuietly(server);
      try {
        selector.close();
      } catch (IOException ignored) {
        // Closing anyway.
      }
    }
  }

  /** Until the oldest handshake's deadline, or indefinitely (0) with none open. */
  private long waitMillis() {
    if (pending.isEmpty()) {
      return 0;
    }
    long left = pending.values().iterator().next().deadline - System.nanoTime();
    return Math.max(1, left / 1_000_000 + 1);
  }

  private void acceptAll() throws IOException {
    for (SocketChannel ch = server.accept(); ch != null; ch = server.accept()) {
      SocketAddress peer = ch.getRemoteAddress();
      while (pending.size() >= limits.maxPendingHandshakes()) {
        Handshake oldest = pending.values().iterator().next();
        drop(oldest, limits.maxPendingHandshakes() + " handshakes were open, this was the oldest");
      }
      try {
        ch.configureBlocking(false);
        ch.socket().setTcpNoDelay(true);
        Handshake h = new Handshake(ch, peer, System.nanoTime() + limits.helloTimeout().toNanos(),
            limits.maxHelloBytes());
        SelectionKey key = ch.register(selector, SelectionKey.OP_READ, h);
        pending.put(ch, h);
        sendChallenge(h, key);
      } catch (IOException e) {
        closeQuietly(ch);
        LOG.debug("tracker: connection from {} failed at once: {}", peer, e.getMessage());
      }
    }
  }

  private void sendChallenge(Handshake h, SelectionKey key) {
    try {
      h.channel.write(h.out);
      // Nearly always written at once (an empty socket buffer); otherwise finish when writable.
      key.interestOps(h.out.hasRemaining() ? SelectionKey.OP_READ | SelectionKey.OP_WRITE : SelectionKey.OP_READ);
    } catch (IOException e) {
      drop(h, "the challenge could not be sent: " + e.getMessage());
    }
  }

  /** Reads what arrived; true when a hello was admitted (the channel is then handed over after this round). */
  private boolean readHello(Handshake h) {
    int start = h.in.position();
    int n;
    try {
      n = h.channel.read(h.in);
    } catch (IOException e) {
      drop(h, "read failed: " + e.getMessage());
      return false;
    }
    if (n < 0) {
      drop(h, "closed before its hello");
      return false;
    }
    byte[] buf = h.in.array();
    int newline = -1;
    for (int i = start; i < h.in.position(); i++) {
      if (buf[i] == '\n') {
        newline = i;
        break;
      }
    }
    if (newline < 0) {
      if (!h.in.hasRemaining()) {
        drop(h, "no hello within its first " + limits.maxHelloBytes() + " bytes");
      }
      return false;
    }
    TrackerEvent hello = parse(new String(buf, 0, newline, StandardCharsets.UTF_8));
    String refusal = hello == null ? "not a spark-dpo hello" : door.refusal(hello, h.nonce);
    if (refusal != null) {
      refuse(h, refusal);
      return false;
    }
    h.hello = hello;
    h.helloEnd = newline;
    return true;
  }

  /** Admitted handshakes leave the selector (deregistered first: only then may a channel block) for the door. */
  private void handOver(List<Handshake> admitted) throws IOException {
    if (admitted.isEmpty()) {
      return;
    }
    for (Handshake h : admitted) {
      pending.remove(h.channel);
      h.channel.keyFor(selector).cancel();
    }
    selector.selectNow();
    for (Handshake h : admitted) {
      try {
        h.channel.configureBlocking(true);
        door.admit(h.channel, h.hello, Arrays.copyOfRange(h.in.array(), h.helloEnd + 1, h.in.position()));
      } catch (IOException | RuntimeException e) {
        closeQuietly(h.channel);
        LOG.warn("tracker: could not take over the connection of rank {} from {}: {}", h.hello.rank(), h.peer,
            e.toString());
      }
    }
  }

  private void expire() {
    long now = System.nanoTime();
    Iterator<Handshake> it = pending.values().iterator();
    while (it.hasNext()) {
      Handshake h = it.next();
      if (h.deadline - now > 0) {
        return; // accept order is deadline order
      }
      it.remove();
      drop(h, "no hello within " + limits.helloTimeout().toMillis() + " ms");
    }
  }

  /** Answers a refused hello in one line (best effort: never waits for a slow reader) and closes. */
  private void refuse(Handshake h, String why) {
    drop(h, "refused: " + why, ("refused: " + why + "\n").getBytes(StandardCharsets.UTF_8));
  }

  private void drop(Handshake h, String why) {
    drop(h, why, null);
  }

  /** Counted before the answer goes out, so whoever reads the answer sees the count. */
  private void drop(Handshake h, String why, byte[] answer) {
    pending.remove(h.channel);
    long n = dropped.incrementAndGet();
    // A flood must not flood the log too: every drop at debug, a summary at powers of two.
    if (Long.bitCount(n) == 1) {
      LOG.warn("tracker: {} connection(s) dropped before admission so far; latest from {}: {}", n, h.peer, why);
    } else {
      LOG.debug("tracker: dropped a connection from {}: {}", h.peer, why);
    }
    if (answer != null) {
      try {
        h.channel.write(ByteBuffer.wrap(answer));
      } catch (IOException ignored) {
        // Closing anyway.
      }
    }
    closeQuietly(h.channel);
  }

  private static TrackerEvent parse(String line) {
    try {
      return Json.LINES.readValue(line, TrackerEvent.class);
    } catch (IOException e) {
      return null;
    }
  }

  static String line(TrackerEvent event) {
    try {
      return Json.LINES.writeValueAsString(event) + "\n";
    } catch (IOException e) {
      throw new IllegalStateException("a tracker event always serialises", e);
    }
  }

  private static void closeQuietly(java.io.Closeable c) {
    try {
      c.close();
    } catch (IOException ignored) {
      // Nothing left to do with it.
    }
  }

  @Override
  public void close() {
    closed = true;
    selector.wakeup();
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
