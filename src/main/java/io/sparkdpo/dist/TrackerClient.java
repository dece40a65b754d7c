package io.sparkdpo.dist;

import io.sparkdpo.io.Json;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;

/**
 * A rank's TCP connection to the driver's {@link DriverTracker}: a hello with the run's token, then one JSON line
 * per event, flushed at once (a handful of lines per step). A write that fails means the driver is gone or
 * unreachable, and fails the task: a run nobody watches is not worth continuing.
 */
public final class TrackerClient implements MetricsChannel, AutoCloseable {
  private final Socket socket;
  private final OutputStream out;
  private final String address;

  private TrackerClient(Socket socket, String address) throws IOException {
    this.socket = socket;
    this.out = socket.getOutputStream();
    this.address = address;
  }

  /**
   * Connects and introduces this rank; the driver must answer {@code ok} within {@code timeout}.
   *
   * @throws IllegalStateException naming the address when the driver cannot be reached or refuses us
   */
  public static TrackerClient connect(String host, int port, Duration timeout, TrackerEvent hello) {
    String address = host + ":" + port;
    Socket socket = new Socket();
    try {
      socket.setTcpNoDelay(true);
      socket.connect(new InetSocketAddress(host, port), Math.toIntExact(timeout.toMillis()));
      TrackerClient client = new TrackerClient(socket, address);
      client.send(hello);
      socket.setSoTimeout(Math.toIntExact(timeout.toMillis()));
      String answer = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8))
          .readLine();
      socket.setSoTimeout(0);
      if (!"ok".equals(answer)) {
        String why = answer == null ? "it closed the connection" : answer.replaceFirst("^refused: ", "");
        throw new IllegalStateException("the driver's tracker at " + address + " refused rank " + hello.rank()
            + ": " + why);
      }
      return client;
    } catch (IOException e) {
      closeQuietly(socket);
      throw new IllegalStateException("cannot reach the driver's tracker at " + address + " from rank "
          + hello.rank() + ": " + e.getMessage() + " (executors must be able to open TCP connections to the"
          + " driver host)", e);
    } catch (RuntimeException e) {
      closeQuietly(socket);
      throw e;
    }
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
      send(TrackerEvent.of(TrackerEvent.FAILED, step).withDetail(reason, retryable));
    } catch (RuntimeException ignored) {
      // The task is failing anyway; Spark reports the exception itself.
    }
  }

  private synchronized void send(TrackerEvent event) {
    try {
      out.write((Json.LINES.writeValueAsString(event) + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("lost the connection to the driver's tracker at " + address + ": "
          + e.getMessage(), e);
    }
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
