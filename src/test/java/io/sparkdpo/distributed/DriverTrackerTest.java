package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DriverTrackerTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(10);
  private final List<TrackerEvent> events = Collections.synchronizedList(new ArrayList<>());

  private DriverTracker start() throws Exception {
    return DriverTracker.start("127.0.0.1", InetAddress.getLoopbackAddress(), RunSecret.random(), events::add);
  }

  private static TrackerClient client(DriverTracker t, RunSecret secret, int attempt, int rank) {
    return TrackerClient.connect(t.host(), t.port(), TIMEOUT, secret, hello(attempt, rank));
  }

  private static TrackerClient client(DriverTracker t, int attempt, int rank) {
    return client(t, t.secret(), attempt, rank);
  }

  static TrackerEvent hello(int attempt, int rank) {
    return TrackerEvent.hello(attempt, rank, "exec-" + rank, "10.0.0." + rank, 100 + rank, "cpu");
  }

  @Test
  void streamsEveryRanksEventsToTheListenerStampedWithAttemptAndRank() throws Exception {
    try (DriverTracker tracker = start()) {
      tracker.beginAttempt(1);
      try (TrackerClient r0 = client(tracker, 1, 0);
           TrackerClient r1 = client(tracker, 1, 1)) {
        r0.started(0);
        r1.started(0);
        r0.step(1, Map.of("loss", 1.5, "learning_rate", 1e-6));
        r0.eval(1, Map.of("eval/loss", 1.25));
        r0.checkpoint(1, "file:/run/checkpoints/step-1");
        r0.finished(1, 0xABCDL);
        r1.finished(1, 0xABCDL);
      }
      assertTrue(tracker.awaitQuiet(1, TIMEOUT));
      AttemptLog log = tracker.attempt(1);
      assertEquals(List.of(0, 1), log.connectedRanks());
      assertTrue(log.failures().isEmpty());
      assertTrue(log.lostRanks().isEmpty());
      assertEquals(1, log.lastStep());

      TrackerEvent step = only(TrackerEvent.STEP);
      assertEquals(1, step.attempt());
      assertEquals(0, step.rank());
      assertEquals(1L, step.step());
      assertEquals(Map.of("loss", 1.5, "learning_rate", 1e-6), step.metrics());
      assertEquals(Map.of("eval/loss", 1.25), only(TrackerEvent.EVAL).metrics());
      assertEquals("file:/run/checkpoints/step-1", only(TrackerEvent.CHECKPOINT).detail());
      TrackerEvent hello = events.stream().filter(e -> e.type().equals(TrackerEvent.HELLO) && e.rank() == 1)
          .findFirst().orElseThrow();
      assertEquals("exec-1", hello.executor());
      assertEquals(101L, hello.pid());
      assertNull(hello.proof(), "the proof is not passed on");
      assertEquals(2, events.stream().filter(e -> e.type().equals(TrackerEvent.FINISHED)).count());
    }
  }

  @Test
  void refusesAnotherRunsSecretAndAStragglerOfAnEarlierAttempt() throws Exception {
    try (DriverTracker tracker = start()) {
      tracker.beginAttempt(1);
      IllegalStateException wrong = assertThrows(IllegalStateException.class,
          () -> client(tracker, RunSecret.random(), 1, 0));
      assertTrue(wrong.getMessage().endsWith("refused rank 0: authentication failed (a task of another run?)"),
          wrong.getMessage());
      tracker.beginAttempt(2);
      IllegalStateException stale = assertThrows(IllegalStateException.class,
          () -> client(tracker, 1, 1));
      assertTrue(stale.getMessage().endsWith("attempt 1 is over; the driver now runs attempt 2"),
          stale.getMessage());
      assertTrue(tracker.attempt(1).connectedRanks().isEmpty());
      assertTrue(events.isEmpty());
    }
  }

  @Test
  void keepsFailureReportsAndNamesRanksThatHungUpWithoutOne() throws Exception {
    try (DriverTracker tracker = start()) {
      tracker.beginAttempt(3);
      TrackerClient r0 = client(tracker, 3, 0);
      TrackerClient r1 = client(tracker, 3, 1);
      r0.step(4, Map.of("loss", 0.5));
      r0.failed(5, "IllegalStateException: boom", false);
      r0.close();
      r1.close(); // as a killed executor's socket would
      assertTrue(tracker.awaitQuiet(3, TIMEOUT));
      AttemptLog log = tracker.attempt(3);
      assertEquals(List.of(1), log.lostRanks());
      assertEquals(1, log.failures().size());
      TrackerEvent failure = log.failures().get(0);
      assertEquals(0, failure.rank());
      assertEquals(5L, failure.step());
      assertEquals("IllegalStateException: boom", failure.detail());
      assertEquals(Boolean.FALSE, failure.retryable());
      assertEquals(4, log.lastStep());
    }
  }

  @Test
  void aStragglerOfAnEarlierAttemptIsLoggedThereButKeptFromTheListener() throws Exception {
    try (DriverTracker tracker = start()) {
      tracker.beginAttempt(1);
      try (TrackerClient late = client(tracker, 1, 0)) {
        tracker.beginAttempt(2);
        late.step(9, Map.of("loss", 9.0));
        late.failed(9, "CollectiveException: peer gone", true);
      }
      assertTrue(tracker.awaitQuiet(1, TIMEOUT));
      assertEquals(1, tracker.attempt(1).failures().size());
      assertEquals(9, tracker.attempt(1).lastStep());
      assertEquals(List.of(TrackerEvent.HELLO), events.stream().map(TrackerEvent::type).toList());
    }
  }

  @Test
  void aTaskFailsWithTheAddressWhenTheDriverCannotBeReachedOrGoesAway() throws Exception {
    int closedPort;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      closedPort = s.getLocalPort();
    }
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> TrackerClient.connect("127.0.0.1",
        closedPort, TIMEOUT, RunSecret.random(), hello(1, 2)));
    assertTrue(e.getMessage().startsWith("cannot reach the driver's tracker at 127.0.0.1:" + closedPort
        + " from rank 2: "), e.getMessage());

    DriverTracker tracker = start();
    tracker.beginAttempt(1);
    try (TrackerClient client = client(tracker, 1, 0)) {
      tracker.close();
      UncheckedIOException lost = assertThrows(UncheckedIOException.class, () -> {
        for (int i = 0; i < 200; i++) { // the first writes may still land in the socket buffers
          client.step(i, Map.of("loss", 1.0));
          Thread.sleep(10);
        }
      });
      assertTrue(lost.getMessage().startsWith("lost the connection to the driver's tracker at 127.0.0.1:"),
          lost.getMessage());
    }
  }

  private TrackerEvent only(String type) {
    List<TrackerEvent> matching = events.stream().filter(e -> e.type().equals(type)).toList();
    assertEquals(1, matching.size(), events.toString());
    return matching.get(0);
  }
}
