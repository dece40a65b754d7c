package io.sparkdpo.dist;

import io.sparkdpo.io.Json;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's end of the task-to-driver line (XGBoost4J-Spark's tracker pattern): a small TCP server on the
 * driver that every rank of the barrier stage connects to, streaming JSON lines (started, per-step metrics from
 * rank 0, evaluations, checkpoints, finished, failed with the reason). Metrics never pass through Spark's
 * {@code allGather}, which costs a second per call and routes every byte through the driver's RPC.
 *
 * <p>A connection must first present the run's random token and the current attempt, so a stray client or a
 * straggler of a failed attempt is refused. Events reach the {@link Listener} one at a time, stamped with the
 * connection's attempt and rank. Per attempt, an {@link AttemptLog} keeps who connected, who failed and why,
 * and who vanished without a word (a lost executor).
 */
public final class DriverTracker implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(DriverTracker.class);
  private static final int HELLO_TIMEOUT_MS = 30_000;

  /** Receives the events of the current attempt, one at a time. */
  @FunctionalInterface
  public interface Listener {
    void onEvent(TrackerEvent event);
  }

  private final ServerSocket server;
  private final String advertisedHost;
  private final RunSecret secret;
  private final String token;
  private final Listener listener;
  private final Object listenerLock = new Object();
  private final Map<Integer, AttemptLog> attempts = new ConcurrentHashMap<>();
  private final Set<Socket> connections = ConcurrentHashMap.newKeySet();
  private volatile int currentAttempt;
  private volatile boolean closed;

  private DriverTracker(ServerSocket server, String advertisedHost, RunSecret secret, Listener listener) {
    this.server = server;
    this.advertisedHost = advertisedHost;
    this.listener = listener;
    this.secret = secret;
    this.token = helloToken(secret);
  }

  /** What a rank presents in its hello: derived from the run's secret, never the key itself. */
  static String helloToken(RunSecret secret) {
    return HexFormat.of().formatHex(secret.mac("tracker hello"));
  }

  /**
   * Listens on an ephemeral port of {@code bindAddress}; tasks connect to {@code advertisedHost} (the driver's
   * host as executors see it, {@code spark.driver.host}).
   */
  public static DriverTracker start(String advertisedHost, InetAddress bindAddress, RunSecret secret,
      Listener listener) throws IOException {
    ServerSocket server = new ServerSocket();
    server.bind(new InetSocketAddress(bindAddress, 0), 128);
    DriverTracker tracker = new DriverTracker(server, advertisedHost, secret, listener);
    Thread accept = new Thread(tracker::acceptLoop, "spark-dpo-tracker-accept");
    accept.setDaemon(true);
    accept.start();
    LOG.info("tracker listening on {}:{} (advertised as {})", bindAddress.getHostAddress(), tracker.port(),
        advertisedHost);
    return tracker;
  }

  public String host() {
    return advertisedHost;
  }

  public int port() {
    return server.getLocalPort();
  }

  /** The run's secret; travels inside the serialised task spec. */
  public RunSecret secret() {
    return secret;
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

  private void acceptLoop() {
    while (!closed) {
      try {
        Socket socket = server.accept();
        connections.add(socket);
        Thread reader = new Thread(() -> serve(socket), "spark-dpo-tracker-" + socket.getRemoteSocketAddress());
        reader.setDaemon(true);
        reader.start();
      } catch (IOException e) {
        if (!closed) {
          LOG.warn("tracker stopped accepting connections: {}", e.getMessage());
        }
        return;
      }
    }
  }

  private void serve(Socket socket) {
    AttemptLog log = null;
    int rank = -1;
    try (socket) {
      socket.setSoTimeout(HELLO_TIMEOUT_MS);
      BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
      OutputStream out = socket.getOutputStream();
      TrackerEvent hello = parse(in.readLine());
      String refusal = refusal(hello);
      if (refusal != null) {
        LOG.warn("tracker refused a connection from {}: {}", socket.getRemoteSocketAddress(), refusal);
        out.write(("refused: " + refusal + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        return;
      }
      rank = hello.rank();
      log = attempts.get(hello.attempt());
      log.connected(rank);
      dispatch(log, hello.from(hello.attempt(), rank)); // before the answer: the rank works only after it
      out.write("ok\n".getBytes(StandardCharsets.UTF_8));
      out.flush();
      socket.setSoTimeout(0);
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        TrackerEvent event = parse(line);
        if (event == null) {
          LOG.warn("tracker: rank {} sent an unreadable line: {}", rank, line);
          continue;
        }
        dispatch(log, event.from(hello.attempt(), rank));
      }
    } catch (IOException e) {
      if (!closed) {
        LOG.debug("tracker connection of rank {} ended: {}", rank, e.getMessage());
      }
    } finally {
      connections.remove(socket);
      if (log != null) {
        log.disconnected(rank);
      }
    }
  }

  private String refusal(TrackerEvent hello) {
    if (hello == null || !TrackerEvent.HELLO.equals(hello.type()) || hello.rank() == null
        || hello.attempt() == null) {
      return "not a spark-dpo hello";
    }
    if (!token.equals(hello.token())) {
      return "wrong run token (a task of another run?)";
    }
    if (hello.attempt() != currentAttempt || !attempts.containsKey(hello.attempt())) {
      return "attempt " + hello.attempt() + " is over; the driver now runs attempt " + currentAttempt;
    }
    return null;
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
    if (line == null) {
      return null;
    }
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
    try {
      server.close();
    } catch (IOException ignored) {
      // Closing anyway.
    }
    for (Socket s : connections) {
      try {
        s.close();
      } catch (IOException ignored) {
        // Closing anyway.
      }
    }
  }
}
