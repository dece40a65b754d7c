package io.sparkdpo.distributed;

import io.sparkdpo.io.Json;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's end of the task-to-driver line (XGBoost4J-Spark's tracker pattern): a small TCP server on the
 * driver that every rank of the barrier stage connects to, streaming JSON lines (started, per-step metrics from
 * rank 0, evaluations, checkpoints, finished, failed with the reason). Metrics never pass through Spark's
 * {@code allGather}, which costs a second per call and routes every byte through the driver's RPC.
 *
 * <p>Anyone who can reach the driver can connect, so a connection costs nothing until it authenticates:
 * <ol>
 *   <li>the {@link TrackerGate}'s one thread sends a fresh nonce; the rank answers with a hello whose proof is the
 *       run secret's HMAC over the nonce and what the rank claims to be ({@link #proof}); a forged, replayed or
 *       late (seconds) hello, one that does not fit a few KiB, or the oldest of too many open handshakes is dropped;
 *   <li>a hello of another attempt is refused with the reason (a straggler of a failed attempt), as is one past
 *       {@link TrackerLimits#maxConnections};</li>
 *   <li>only then does the connection get a reader thread, which records the hello, answers {@code ok}, and reads
 *       event lines of bounded length (a longer line closes the connection without being held).</li>
 * </ol>
 * Events reach the {@link Listener} one at a time, stamped with the connection's attempt and rank. Per attempt, an
 * {@link AttemptLog} keeps who connected, who failed and why, and who vanished without a word (a lost executor).
 */
public final class DriverTracker implements AutoCloseable, TrackerGate.Door {
  private static final Logger LOG = LoggerFactory.getLogger(DriverTracker.class);
  private static final String PROOF_PURPOSE = "tracker hello";

  /** Receives the events of the current attempt, one at a time. */
  @FunctionalInterface
  public interface Listener {
    void onEvent(TrackerEvent event);
  }

  private final String advertisedHost;
  private final RunSecret secret;
  private final Listener listener;
  private final TrackerLimits limits;
  private final Object listenerLock = new Object();
  private final Map<Integer, AttemptLog> attempts = new ConcurrentHashMap<>();
  private final Set<SocketChannel> connections = ConcurrentHashMap.newKeySet();
  private final AtomicInteger open = new AtomicInteger();
  private TrackerGate gate;
  private volatile int currentAttempt;
  private volatile boolean closed;

  private DriverTracker(String advertisedHost, RunSecret secret, Listener listener, TrackerLimits limits) {
    this.advertisedHost = advertisedHost;
    this.secret = secret;
    this.listener = listener;
    this.limits = limits;
  }

  /**
   * What a rank presents in its hello: the run secret's HMAC over the driver's nonce and every field the rank
   * claims (attempt, rank, pid, executor, host, device). The key never crosses the socket, and a proof is good for
   * one connection only.
   */
  static byte[] proof(RunSecret secret, byte[] nonce, TrackerEvent hello) {
    return secret.mac(PROOF_PURPOSE, nonce,
        RunSecret.longBytes(hello.attempt(), hello.rank(), hello.pid() == null ? -1 : hello.pid()),
        utf8(hello.executor()), utf8(hello.host()), utf8(hello.device()));
  }

  private static byte[] utf8(String s) {
    return Objects.toString(s, "").getBytes(StandardCharsets.UTF_8);
  }

  /**
   * Listens on an ephemeral port of {@code bindAddress}; tasks connect to {@code advertisedHost} (the driver's
   * host as executors see it, {@code spark.driver.host}).
   */
  public static DriverTracker start(String advertisedHost, InetAddress bindAddress, RunSecret secret,
      Listener listener) throws IOException {
    return start(advertisedHost, bindAddress, secret, listener, TrackerLimits.DEFAULT);
  }

  static DriverTracker start(String advertisedHost, InetAddress bindAddress, RunSecret secret, Listener listener,
      TrackerLimits limits) throws IOException {
    DriverTracker tracker = new DriverTracker(advertisedHost, secret, listener, limits);
    tracker.gate = TrackerGate.open(new InetSocketAddress(bindAddress, 0), limits, tracker);
    LOG.info("tracker listening on {}:{} (advertised as {})", bindAddress.getHostAddress(), tracker.port(),
        advertisedHost);
    return tracker;
  }

  public String host() {
    return advertisedHost;
  }

  public int port() {
    return gate.port();
  }

  /** The run's secret; travels inside the serialised task spec. */
  public RunSecret secret() {
    return secret;
  }

  /** Connections dropped or refused before they were admitted (floods, forgeries, stragglers). */
  long dropped() {
    return gate.dropped();
  }

  /** From now on only tasks of {@code attempt} are accepted. */
  public void beginAttempt(int attempt) {
    attempts.putIfAbsent(attempt, new AttemptLog(attempt));
    currentAttempt = attempt;
  }

  /** What happened in {@code attempt} so far. */
  public AttemptLog attempt(int attempt) {
    AttemptLog log = attempts.get(attempt);
    if (log == null) {
      throw new IllegalArgumentException("attempt " + attempt + " never began");
    }
    return log;
  }

  @Override
  public String refusal(TrackerEvent hello, byte[] nonce) {
    if (!TrackerEvent.HELLO.equals(hello.type()) || hello.rank() == null || hello.attempt() == null) {
      return "not a spark-dpo hello";
    }
    if (!RunSecret.matches(proof(secret, nonce, hello), hex(hello.proof()))) {
      return "authentication failed (a task of another run?)";
    }
    if (hello.attempt() != currentAttempt || !attempts.containsKey(hello.attempt())) {
      return "attempt " + hello.attempt() + " is over; the driver now runs attempt " + currentAttempt;
    }
    if (open.get() >= limits.maxConnections()) {
      return "the tracker already serves " + limits.maxConnections() + " connections";
    }
    return null;
  }

  private static byte[] hex(String s) {
    try {
      return s == null ? null : HexFormat.of().parseHex(s);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  /** Called on the gate's thread only, which is the only one that increments {@code open}: no overshoot. */
  @Override
  public void admit(SocketChannel channel, TrackerEvent hello, byte[] rest) {
    open.incrementAndGet();
    connections.add(channel);
    Thread reader = new Thread(() -> serve(channel, hello, rest),
        "spark-dpo-tracker-a" + hello.attempt() + "-rank-" + hello.rank());
    reader.setDaemon(true);
    reader.start();
    if (closed) {
      closeQuietly(channel);
    }
  }

  private void serve(SocketChannel channel, TrackerEvent hello, byte[] rest) {
    int rank = hello.rank();
    int attempt = hello.attempt();
    AttemptLog log = attempts.get(attempt);
    try (channel) {
      log.connected(rank);
      dispatch(log, hello.from(attempt, rank)); // before the answer: the rank works only after it
      OutputStream out = channel.socket().getOutputStream();
      out.write("ok\n".getBytes(StandardCharsets.UTF_8));
      out.flush();
      BoundedLineReader in = new BoundedLineReader(channel.socket().getInputStream(), limits.maxLineBytes(),
          rest);
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        TrackerEvent event = parse(line);
        if (event == null) {
          LOG.warn("tracker: rank {} sent an unreadable line: {}", rank, abbreviate(line));
          continue;
        }
        dispatch(log, event.from(attempt, rank));
      }
    } catch (BoundedLineReader.LineTooLongException e) {
      LOG.warn("tracker: rank {} of attempt {} sent {}; its connection is closed", rank, attempt, e.getMessage());
    } catch (IOException e) {
      if (!closed) {
        LOG.debug("tracker connection of rank {} ended: {}", rank, e.getMessage());
      }
    } finally {
      connections.remove(channel);
      open.decrementAndGet();
      log.disconnected(rank);
    }
  }

  private static String abbreviate(String line) {
    return line.length() <= 200 ? line : line.substring(0, 200) + "... (" + line.length() + " chars)";
  }

  private void dispatch(AttemptLog log, TrackerEvent event) {
    log.record(event);
    if (event.attempt() != currentAttempt) {
      return; // a straggler of a finished attempt: kept in its log, kept off the progress bar and metrics
    }
    synchronized (listenerLock) {
      try {
        listener.onEvent(event);
      } catch (RuntimeException e) {
        LOG.warn("tracker listener failed on a {} event of rank {}: {}", event.type(), event.rank(), e.toString());
      }
    }
  }

  private static TrackerEvent parse(String line) {
    try {
      return Json.LINES.readValue(line, TrackerEvent.class);
    } catch (IOException e) {
      return null;
    }
  }

  /** Waits until every connection of {@code attempt} has closed; false if some are still open at the timeout. */
  public boolean awaitQuiet(int attempt, Duration timeout) throws InterruptedException {
    return attempt(attempt).awaitNoConnections(timeout);
  }

  @Override
  public void close() {
    closed = true;
    gate.close();
    for (SocketChannel c : connections) {
      closeQuietly(c);
    }
  }

  private static void closeQuietly(SocketChannel c) {
    try {
      c.close();
    } catch (IOException ignored) {
      // Closing anyway.
    }
  }
}
