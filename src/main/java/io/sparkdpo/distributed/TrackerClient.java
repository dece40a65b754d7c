package io.sparkdpo.distributed;

import io.sparkdpo.io.Json;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.NoRouteToHostException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;

/**
 * A rank's TCP connection to the driver's {@link DriverTracker}: answer the driver's challenge with a hello proving
 * the run's secret, then one JSON line per event, flushed at once (a handful of lines per step). A write that fails
 * means the driver is gone or unreachable, and fails the task: a run nobody watches is not worth continuing.
 */
public final class TrackerClient implements MetricsChannel, AutoCloseable {
  /** The driver's lines to us (challenge, answer) are short; anything longer is not our tracker. */
  private static final int ANSWER_BYTES = 4096;
  /** Failure reasons are cut to this many characters, so every line stays far below the tracker's line cap. */
  static final int MAX_DETAIL_CHARS = 4000;

  private final Socket socket;
  private final OutputStream out;
  private final String address;

  private TrackerClient(Socket socket, String address) throws IOException {
    this.socket = socket;
    this.out = socket.getOutputStream();
    this.address = address;
  }

  /**
   * Connects and introduces this rank: reads the driver's challenge, sends {@code hello} with its proof, and waits
   * for {@code ok}, all within {@code timeout}. A connection the driver drops before answering (it sheds the oldest
   * handshakes when flooded) is tried again until the timeout.
   *
   * @param hello who this rank is ({@link TrackerEvent#hello}); the proof is added here
   * @throws IllegalStateException naming the address when the driver cannot be reached or refuses us
   */
  public static TrackerClient connect(String host, int port, Duration timeout, RunSecret secret,
      TrackerEvent hello) {
    String address = host + ":" + port;
    long deadline = System.nanoTime() + timeout.toNanos();
    int drops = 0;
    while (true) {
      Socket socket = new Socket();
      String dropped;
      try {
        socket.setTcpNoDelay(true);
        socket.connect(new InetSocketAddress(host, port), millisLeft(deadline));
        socket.setSoTimeout(millisLeft(deadline));
        BoundedLineReader in = new BoundedLineReader(socket.getInputStream(), ANSWER_BYTES);
        String first = in.readLine();
        if (first == null) {
          dropped = "it closed the connection before its challenge";
        } else {
          byte[] nonce = nonce(first, address);
          TrackerClient client = new TrackerClient(socket, address);
          client.write(hello.withProof(HexFormat.of().formatHex(DriverTracker.proof(secret, nonce, hello))));
          String answer = in.readLine();
          if ("ok".equals(answer)) {
            socket.setSoTimeout(0);
            return client;
          }
          if (answer != null) {
            throw new IllegalStateException("the driver's tracker at " + address + " refused rank " + hello.rank()
                + ": " + answer.replaceFirst("^refused: ", ""));
          }
          dropped = "it closed the connection before answering our hello";
        }
      } catch (ConnectException | NoRouteToHostException | UnknownHostException | SocketTimeoutException
          | BoundedLineReader.LineTooLongException e) {
        closeQuietly(socket);
        throw unreachable(address, hello, e.getMessage(), e);
      } catch (IOException e) {
        dropped = e.getMessage(); // reset by a shedding tracker: try again
      } catch (RuntimeException e) {
        closeQuietly(socket);
        throw e;
      }
      closeQuietly(socket);
      drops++;
      long pause = Math.min(1000, 50L << Math.min(drops, 5));
      if (System.nanoTime() + pause * 1_000_000 - deadline >= 0) {
        throw unreachable(address, hello, "dropped " + drops + " time(s) before it answered, last: " + dropped,
            null);
      }
      try {
        Thread.sleep(pause);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw unreachable(address, hello, "interrupted", e);
      }
    }
  }

  private static byte[] nonce(String challengeLine, String address) {
    try {
      TrackerEvent challenge = Json.LINES.readValue(challengeLine, TrackerEvent.class);
      if (TrackerEvent.CHALLENGE.equals(challenge.type()) && challenge.nonce() != null) {
        byte[] nonce = HexFormat.of().parseHex(challenge.nonce());
        if (nonce.length >= 16) {
          return nonce;
        }
      }
    } catch (IOException | IllegalArgumentException e) {
      // Not a challenge of ours.
    }
    throw new IllegalStateException("the server at " + address + " is not a spark-dpo tracker (it opened with "
        + "no challenge)");
  }

  private static int millisLeft(long deadline) throws SocketTimeoutException {
    long left = (deadline - System.nanoTime()) / 1_000_000;
    if (left <= 0) {
      throw new SocketTimeoutException("timed out");
    }
    return (int) Math.min(Integer.MAX_VALUE, left);
  }

  private static IllegalStateException unreachable(String address, TrackerEvent hello, String why, Throwable e) {
    return new IllegalStateException("cannot reach the driver's tracker at " + address + " from rank "
        + hello.rank() + ": " + why + " (executors must be able to open TCP connections to the driver host)", e);
  }

  @Override
  public void started(long stepsDone) {
    send(TrackerEvent.of(TrackerEvent.STARTED, stepsDone));
  }

  @Override
  public void step(long step, Map<String, Double> metrics) {
    send(TrackerEvent.of(TrackerEvent.STEP, step).withMetrics(metrics));
  }

  @Override
  public void log(long step, Map<String, Double> metrics) {
    send(TrackerEvent.of(TrackerEvent.LOG, step).withMetrics(metrics));
  }

  @Override
  public void eval(long step, Map<String, Double> metrics) {
    send(TrackerEvent.of(TrackerEvent.EVAL, step).withMetrics(metrics));
  }

  @Override
  public void checkpoint(long step, String dir) {
    send(TrackerEvent.of(TrackerEvent.CHECKPOINT, step).withDetail(dir, null));
  }

  @Override
  public void finished(long step, long checksum) {
    send(TrackerEvent.of(TrackerEvent.FINISHED, step).withChecksum(checksum));
  }

  @Override
  public void failed(long step, String reason, boolean retryable) {
    try {
      String detail = reason == null || reason.length() <= MAX_DETAIL_CHARS ? reason
          : reason.substring(0, MAX_DETAIL_CHARS) + "... (cut from " + reason.length() + " characters)";
      send(TrackerEvent.of(TrackerEvent.FAILED, step).withDetail(detail, retryable));
    } catch (RuntimeException ignored) {
      // The task is failing anyway; Spark reports the exception itself.
    }
  }

  private synchronized void send(TrackerEvent event) {
    try {
      write(event);
    } catch (IOException e) {
      throw new UncheckedIOException("lost the connection to the driver's tracker at " + address + ": "
          + e.getMessage(), e);
    }
  }

  private synchronized void write(TrackerEvent event) throws IOException {
    out.write((Json.LINES.writeValueAsString(event) + "\n").getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  @Override
  public void close() {
    closeQuietly(socket);
  }

  private static void closeQuietly(Socket socket) {
    try {
      socket.close();
    } catch (IOException ignored) {
      // Nothing left to do with it.
    }
  }
}
