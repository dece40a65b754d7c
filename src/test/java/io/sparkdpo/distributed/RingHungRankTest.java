package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A hung rank (a stopped process, a thread stuck outside the ring) is named by the ring within the peer timeout,
 * long before the I/O timeout, and no healthy rank is blamed: ranks waiting inside a collective send keepalives,
 * and a rank that fails because a neighbour gave up says so and carries the original cause.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RingHungRankTest {

  private static final Pattern BLAMED = Pattern.compile("rank (\\d+) at \\S+ is hung");

  @Test
  void aRankStuckOutsideTheCollectiveIsNamedByEveryRankWithinThePeerTimeout() throws Exception {
    RingOptions options = RingOptions.defaults().withIoTimeout(Duration.ofSeconds(60))
        .withConnectTimeout(Duration.ofSeconds(20)).withPeerTimeout(Duration.ofMillis(1500));
    CountDownLatch release = new CountDownLatch(1);
    try (InProcessRing ring = InProcessRing.connect(4, options)) {
      var outcomes = ring.outcomes(g -> {
        if (g.rank() == 2) {
          release.await(30, TimeUnit.SECONDS); // a stuck native call: alive, connections open, silent
          return null;
        }
        try {
          g.allReduceMean(RingAllReduceTest.direct(new float[2_000_000]));
          return null;
        } finally {
          if (g.rank() == 0) {
            release.countDown();
          }
        }
      }, 60);
      for (int r : new int[] {0, 1, 3}) {
        InProcessRing.Outcome<?> o = outcomes.get(r);
        CollectiveException e = assertInstanceOf(CollectiveException.class, o.error(), () -> "got " + o.error());
        assertTrue(o.elapsedMillis() < 6_000, "rank " + r + " failed only after " + o.elapsedMillis() + " ms");
        assertTrue(o.elapsedMillis() >= 1_400, "rank " + r + " failed before the peer timeout: " + e.getMessage());
        assertEquals(List.of(2), blamed(e.getMessage()), e.getMessage());
        assertTrue(e.getMessage().contains("rank 2 at " + ring.address(2) + " is hung"), e.getMessage());
      }
      // Rank 0 is not next to rank 2: it was told by a neighbour, and says so.
      CollectiveException far = (CollectiveException) outcomes.get(0).error();
      assertTrue(far.getMessage().contains(CollectiveException.ABORTED_THE_RING), far.getMessage());
      assertNotNull(far.origin());
      assertTrue(far.origin().contains("rank 2 at " + ring.address(2) + " is hung"), far.origin());
    }
  }

  @Test
  void aStoppedProcessIsNamedByBothNeighboursWithinThePeerTimeout() throws Exception {
    RingOptions options = RingOptions.defaults().withIoTimeout(Duration.ofSeconds(60))
        .withConnectTimeout(Duration.ofSeconds(60)).withPeerTimeout(Duration.ofSeconds(2))
        .withSecret(RingPeerProcess.SECRET); // the child JVM proves the same key
    try (ChildJvm peer = ChildJvm.start(RingPeerProcess.class, List.of("-Xmx128m"), "loop", "250000", "2000")) {
      var endpoints = InProcessRing.Endpoints.open(2, options);
      List<ServerSocketChannel> listeners = endpoints.listeners();
      List<InetSocketAddress> addresses = new ArrayList<>(endpoints.addresses());
      addresses.add(new InetSocketAddress(InProcessRing.LOOPBACK, Integer.parseInt(peer.awaitLine("listening", 60))));
      peer.send("2 " + hostPort(addresses.get(0)) + " " + hostPort(addresses.get(1)) + " "
          + hostPort(addresses.get(2)));
      ExecutorService threads = Executors.newFixedThreadPool(2);
      try {
        List<Future<?>> ranks = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
          int rank = r;
          ranks.add(threads.submit(() -> {
            try (RingAllReduce g = RingAllReduce.connect(rank, addresses, listeners.get(rank), options)) {
              var data = RingAllReduceTest.direct(new float[250_000]);
              for (;;) {
                g.allReduceMean(data);
              }
            }
          }));
        }
        peer.awaitLine("looping", 60);
        Thread.sleep(500); // a few hundred all-reduces, then SIGSTOP at an arbitrary point of one
        peer.signal("STOP");
        long stopped = System.nanoTime();
        for (int r = 0; r < 2; r++) {
          Future<?> rank = ranks.get(r);
          Exception e = assertThrows(Exception.class, () -> rank.get(30, TimeUnit.SECONDS));
          CollectiveException c = assertInstanceOf(CollectiveException.class, e.getCause());
          long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopped);
          assertTrue(ms < 8_000, "noticed only after " + ms + " ms: " + c.getMessage());
          assertEquals(List.of(2), blamed(c.getMessage()), c.getMessage());
          assertTrue(c.getMessage().contains("rank 2 at " + addresses.get(2) + " is hung"), c.getMessage());
        }
      } finally {
        peer.signal("CONT");
        threads.shutdownNow();
      }
    }
  }

  /** The ranks a message calls hung, each once. */
  private static List<Integer> blamed(String message) {
    Set<Integer> ranks = new TreeSet<>();
    Matcher m = BLAMED.matcher(message);
    while (m.find()) {
      ranks.add(Integer.parseInt(m.group(1)));
    }
    return List.copyOf(ranks);
  }

  private static String hostPort(InetSocketAddress a) {
    return a.getHostString() + ":" + a.getPort();
  }
}
