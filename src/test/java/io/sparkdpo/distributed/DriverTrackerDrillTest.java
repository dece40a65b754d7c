package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Json;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The drills of issue 14 against a live tracker with real clients: forged, replayed and altered hellos, silent and
 * slow peers, a 100 MB line before and after authentication, and a flood of idle connections. Everything targets
 * 127.0.0.1.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DriverTrackerDrillTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(20);
  private static final long HUNDRED_MB = 100L << 20;
  /** Loopback socket buffers on both ends hold a few MB; anything near 100 MB means the line was read. */
  private static final long BUFFERED_AT_MOST = 32L << 20;
  private final List<TrackerEvent> events = Collections.synchronizedList(new ArrayList<>());

  private DriverTracker start(TrackerLimits limits) throws IOException {
    return DriverTracker.start("127.0.0.1", InetAddress.getLoopbackAddress(), RunSecret.random(), events::add,
        limits);
  }

  @Test
  void aReplayedAlteredOrGarbageHelloIsRefusedAndOnlyTheRealOneAdmitted() throws Exception {
    try (DriverTracker tracker = start(TrackerLimits.DEFAULT)) {
      tracker.beginAttempt(1);
      TrackerEvent hello = DriverTrackerTest.hello(1, 0);
      String replayed;
      byte[] firstNonce;
      try (Raw real = new Raw(tracker)) {
        firstNonce = real.challenge();
        replayed = line(hello.withProof(proof(tracker, firstNonce, hello)));
        real.send(replayed);
        assertEquals("ok", real.answer());
      }
      try (Raw replay = new Raw(tracker)) {
        assertNotEquals(HexFormat.of().formatHex(firstNonce), HexFormat.of().formatHex(replay.challenge()));
        replay.send(replayed);
        assertEquals("refused: authentication failed (a task of another run?)", replay.answer());
        assertNull(replay.answer(), "and the connection is closed");
      }
      try (Raw altered = new Raw(tracker)) {
        byte[] nonce = altered.challenge();
        TrackerEvent rank1 = DriverTrackerTest.hello(1, 1);
        // The proof of rank 0's hello over this very nonce, presented as rank 1: the claimed fields are covered.
        altered.send(line(rank1.withProof(proof(tracker, nonce, hello))));
        assertEquals("refused: authentication failed (a task of another run?)", altered.answer());
      }
      try (Raw garbage = new Raw(tracker)) {
        garbage.challenge();
        garbage.send("GET / HTTP/1.1");
        assertEquals("refused: not a spark-dpo hello", garbage.answer());
      }
      assertTrue(tracker.awaitQuiet(1, TIMEOUT));
      assertEquals(List.of(0), tracker.attempt(1).connectedRanks());
      assertEquals(1, events.size(), events.toString());
      assertEquals(3, tracker.dropped());
    }
  }

  @Test
  void aSilentOrSlowPeerIsDroppedAtTheHelloDeadline() throws Exception {
    TrackerLimits limits = new TrackerLimits(Duration.ofMillis(400), 64, 256, 4096, 64 << 10);
    try (DriverTracker tracker = start(limits); Raw silent = new Raw(tracker); Raw slow = new Raw(tracker)) {
      tracker.beginAttempt(1);
      silent.challenge();
      slow.challenge();
      long t0 = System.nanoTime();
      IOException cut = assertThrows(IOException.class, () -> {
        for (int i = 0; i < 100; i++) { // a byte every 50 ms, never a whole line: 5 s if nobody cuts it short
          slow.out.write('{');
          slow.out.flush();
          Thread.sleep(50);
        }
      });
      double slowSeconds = (System.nanoTime() - t0) / 1e9;
      assertNull(silent.answer(), "the silent peer's connection is closed");
      assertTrue(slowSeconds < 2.5, "the slow sender was cut after " + slowSeconds + " s: " + cut);
      assertEquals(2, tracker.dropped());
      try (TrackerClient real = TrackerClient.connect("127.0.0.1", tracker.port(), TIMEOUT, tracker.secret(),
          DriverTrackerTest.hello(1, 0))) {
        real.finished(1, 7L);
      }
      assertTrue(tracker.awaitQuiet(1, TIMEOUT));
      assertEquals(List.of(0), tracker.attempt(1).connectedRanks());
    }
  }

  /** The drill that threw OutOfMemoryError in the driver within 16 s: one line, 100 MB, no newline. */
  @Test
  void aHundredMegabyteLineBeforeTheHelloIsCutWithoutBeingHeld() throws Exception {
    try (DriverTracker tracker = start(TrackerLimits.DEFAULT)) {
      tracker.beginAttempt(1);
      long gateBytes = allocatedBytes("spark-dpo-tracker-gate");
      long written;
      try (Raw flood = new Raw(tracker)) {
        flood.challenge();
        written = pour(flood.out, HUNDRED_MB);
      }
      long gateAllocated = allocatedBytes("spark-dpo-tracker-gate") - gateBytes;
      assertTrue(written < BUFFERED_AT_MOST, "the tracker took " + written + " bytes of the line");
      assertTrue(gateAllocated < (8 << 20), "the gate's thread allocated " + gateAllocated + " bytes");
      assertEquals(1, tracker.dropped());
      try (TrackerClient real = TrackerClient.connect("127.0.0.1", tracker.port(), TIMEOUT, tracker.secret(),
          DriverTrackerTest.hello(1, 0))) {
        real.step(1, Map.of("loss", 0.5));
      }
      assertTrue(tracker.awaitQuiet(1, TIMEOUT));
      assertEquals(1, tracker.attempt(1).lastStep());
    }
  }

  @Test
  void aHundredMegabyteLineFromAnAdmittedRankClosesOnlyItsConnection() throws Exception {
    try (DriverTracker tracker = start(TrackerLimits.DEFAULT)) {
      tracker.beginAttempt(1);
      long written;
      try (TrackerClient r1 = TrackerClient.connect("127.0.0.1", tracker.port(), TIMEOUT, tracker.secret(),
          DriverTrackerTest.hello(1, 1))) {
        try (Raw r0 = new Raw(tracker)) {
          byte[] nonce = r0.challenge();
          TrackerEvent hello = DriverTrackerTest.hello(1, 0);
          r0.send(line(hello.withProof(proof(tracker, nonce, hello))));
          assertEquals("ok", r0.answer());
          written = pour(r0.out, HUNDRED_MB);
        }
        r1.step(3, Map.of("loss", 0.25));
        r1.finished(3, 9L);
      }
      assertTrue(written < BUFFERED_AT_MOST, "the tracker took " + written + " bytes of the line");
      assertTrue(tracker.awaitQuiet(1, TIMEOUT));
      AttemptLog log = tracker.attempt(1);
      assertEquals(List.of(0), log.lostRanks(), "rank 0 hung up without a word");
      assertEquals(3, log.lastStep());
    }
  }

  @Test
  void moreAdmittedConnectionsThanTheCapAreRefused() throws Exception {
    TrackerLimits limits = new TrackerLimits(Duration.ofSeconds(5), 64, 2, 4096, 64 << 10);
    try (DriverTracker tracker = start(limits)) {
      tracker.beginAttempt(1);
      try (TrackerClient a = client(tracker, 0); TrackerClient b = client(tracker, 1)) {
        IllegalStateException third = assertThrows(IllegalStateException.class, () -> client(tracker, 2));
        assertTrue(third.getMessage().endsWith("refused rank 2: the tracker already serves 2 connections"),
            third.getMessage());
      }
    }
  }

  /**
   * The drill that took the driver from 134 to 434 threads: 300 idle connections, and more arriving all the time,
   * while four real ranks connect and stream their events. No thread per unauthenticated connection; the ranks
   * complete.
   */
  @Test
  void aFloodOfIdleConnectionsCostsNoThreadAndRealRanksGetThrough() throws Exception {
    int ranks = 4;
    int steps = 20;
    try (DriverTracker tracker = start(TrackerLimits.DEFAULT)) {
      tracker.beginAttempt(1);
      ArrayDeque<Socket> idle = new ArrayDeque<>();
      for (int i = 0; i < 300; i++) {
        idle.add(new Socket(InetAddress.getLoopbackAddress(), tracker.port()));
      }
      AtomicBoolean flooding = new AtomicBoolean(true);
      AtomicInteger floodConnections = new AtomicInteger(300);
      Thread flood = new Thread(() -> {
        while (flooding.get() && floodConnections.get() < 5_000) { // bounded: ephemeral ports are finite
          try {
            idle.add(new Socket(InetAddress.getLoopbackAddress(), tracker.port()));
            floodConnections.incrementAndGet();
            if (idle.size() > 300) {
              idle.poll().close();
            }
          } catch (IOException e) {
            // The tracker is shedding: keep pushing.
          }
        }
      }, "drill-flood");
      flood.start();
      int peakTrackerThreads = 0;
      ExecutorService pool = Executors.newFixedThreadPool(ranks);
      try {
        List<Future<?>> done = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
          int rank = r;
          done.add(pool.submit(() -> {
            try (TrackerClient c = client(tracker, rank)) {
              c.started(0);
              for (int s = 1; s <= steps; s++) {
                c.step(s, Map.of("loss", 1.0 / s));
                Thread.sleep(20);
              }
              c.finished(steps, 42L);
            }
            return null;
          }));
        }
        while (done.stream().anyMatch(f -> !f.isDone())) {
          peakTrackerThreads = Math.max(peakTrackerThreads, trackerThreads());
          Thread.sleep(5);
        }
        for (Future<?> f : done) {
          f.get(); // a rank that could not get through fails the test here
        }
      } finally {
        flooding.set(false);
        flood.join();
        pool.shutdownNow();
        for (Socket s : idle) {
          s.close();
        }
      }
      assertTrue(tracker.awaitQuiet(1, TIMEOUT));
      AttemptLog log = tracker.attempt(1);
      assertEquals(List.of(0, 1, 2, 3), log.connectedRanks());
      assertTrue(log.lostRanks().isEmpty());
      assertEquals(ranks * steps, events.stream().filter(e -> e.type().equals(TrackerEvent.STEP)).count());
      assertEquals(ranks, events.stream().filter(e -> e.type().equals(TrackerEvent.FINISHED)).count());
      assertTrue(peakTrackerThreads <= 1 + ranks, "tracker threads peaked at " + peakTrackerThreads + " with "
          + floodConnections.get() + " flood connections");
      assertTrue(tracker.dropped() >= 300 - TrackerLimits.DEFAULT.maxPendingHandshakes(),
          "dropped " + tracker.dropped());
    }
  }

  /** A tracker shedding handshakes under a flood closes a real rank's connection too: the rank dials again. */
  @Test
  void aRankWhoseHandshakeWasShedConnectsAgain() throws Exception {
    RunSecret secret = RunSecret.random();
    try (java.net.ServerSocket shedding = new java.net.ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
      AtomicInteger accepted = new AtomicInteger();
      Thread server = new Thread(() -> {
        try {
          while (true) {
            Socket s = shedding.accept();
            int n = accepted.incrementAndGet();
            if (n == 1) {
              s.close(); // shed before the challenge
              continue;
            }
            byte[] nonce = RunSecret.nonce(TrackerGate.NONCE_BYTES);
            s.getOutputStream().write(TrackerGate.line(TrackerEvent.challenge(HexFormat.of().formatHex(nonce)))
                .getBytes(StandardCharsets.UTF_8));
            BoundedLineReader in = new BoundedLineReader(s.getInputStream(), 4096);
            TrackerEvent hello = Json.LINES.readValue(in.readLine(), TrackerEvent.class);
            if (n == 2) {
              s.close(); // shed after the hello, before the answer
              continue;
            }
            boolean good = RunSecret.matches(DriverTracker.proof(secret, nonce, hello),
                HexFormat.of().parseHex(hello.proof()));
            s.getOutputStream().write((good ? "ok\n" : "refused: bad proof\n").getBytes(StandardCharsets.UTF_8));
          }
        } catch (IOException closed) {
          // The test is over.
        }
      }, "drill-shedding-tracker");
      server.setDaemon(true);
      server.start();
      try (TrackerClient c = TrackerClient.connect("127.0.0.1", shedding.getLocalPort(), TIMEOUT, secret,
          DriverTrackerTest.hello(1, 0))) {
        assertEquals(3, accepted.get(), "shed twice, admitted on the third connection");
      }
    }
  }

  private static TrackerClient client(DriverTracker tracker, int rank) {
    return TrackerClient.connect("127.0.0.1", tracker.port(), TIMEOUT, tracker.secret(),
        DriverTrackerTest.hello(1, rank));
  }

  private static String proof(DriverTracker tracker, byte[] nonce, TrackerEvent hello) {
    return HexFormat.of().formatHex(DriverTracker.proof(tracker.secret(), nonce, hello));
  }

  private static String line(TrackerEvent event) throws IOException {
    return Json.LINES.writeValueAsString(event);
  }

  /** Writes up to {@code total} bytes of 'x' (no newline); returns how many went out before the peer cut us off. */
  private static long pour(OutputStream out, long total) {
    byte[] chunk = new byte[64 << 10];
    Arrays.fill(chunk, (byte) 'x');
    long written = 0;
    try {
      while (written < total) {
        out.write(chunk);
        written += chunk.length;
      }
      out.flush();
    } catch (IOException cutOff) {
      // What the drill expects.
    }
    return written;
  }

  private static int trackerThreads() {
    return (int) Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().startsWith("spark-dpo-tracker")).count();
  }

  private static long allocatedBytes(String threadName) {
    Thread thread = Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(threadName))
        .findFirst().orElseThrow();
    return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean())
        .getThreadAllocatedBytes(thread.getId());
  }

  /** A hand-driven connection to the tracker. */
  private static final class Raw implements AutoCloseable {
    final Socket socket;
    final OutputStream out;
    final BoundedLineReader in;

    Raw(DriverTracker tracker) throws IOException {
      socket = new Socket(InetAddress.getLoopbackAddress(), tracker.port());
      socket.setSoTimeout(20_000);
      out = socket.getOutputStream();
      in = new BoundedLineReader(socket.getInputStream(), 4096);
    }

    byte[] challenge() throws IOException {
      TrackerEvent c = Json.LINES.readValue(in.readLine(), TrackerEvent.class);
      assertEquals(TrackerEvent.CHALLENGE, c.type());
      byte[] nonce = HexFormat.of().parseHex(c.nonce());
      assertEquals(TrackerGate.NONCE_BYTES, nonce.length);
      return nonce;
    }

    void send(String line) throws IOException {
      out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    }

    String answer() throws IOException {
      try {
        return in.readLine();
      } catch (java.net.SocketException reset) {
        return null; // closed with our bytes unread: a reset instead of an orderly end
      }
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }
}
