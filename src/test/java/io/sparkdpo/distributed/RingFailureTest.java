package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A ring must fail everywhere, quickly and with the culprit named, never hang. */
class RingFailureTest {

  private static final RingOptions LONG_TIMEOUT = RingOptions.defaults()
      .withIoTimeout(Duration.ofSeconds(60)).withConnectTimeout(Duration.ofSeconds(30))
      .withSecret(RingPeerProcess.SECRET);

  @Test
  void everyRankFailsFastNamingThePeerWhenAPeerClosesItsConnections() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(3, LONG_TIMEOUT)) {
      var outcomes = ring.outcomes(g -> {
        if (g.rank() == 2) {
          Thread.sleep(300);
          g.close();
          return null;
        }
        g.allReduceMean(RingAllReduceTest.direct(new float[1_000_000]));
        return null;
      }, 30);
      String rank2 = "rank 2 at " + address(ring, 2);
      String rank0 = "rank 0 at " + address(ring, 0);
      CollectiveException at0 = failed(outcomes.get(0), 10_000);
      assertTrue(at0.getMessage().contains(rank2), at0.getMessage());
      assertTrue(at0.getMessage().startsWith("rank 0 of 3, allReduceMean #1: "), at0.getMessage());
      // Rank 0 notices rank 2 itself, or, under load, first hears that rank 1 noticed and aborted the ring.
      if (at0.origin() == null) {
        assertEquals(2, at0.peerRank(), at0.getMessage());
      } else {
        assertEquals(1, at0.peerRank(), at0.getMessage());
        assertTrue(at0.getMessage().contains("rank 1 at " + address(ring, 1) + " "
            + CollectiveException.ABORTED_THE_RING), at0.getMessage());
        assertTrue(at0.origin().contains(rank2), at0.origin());
      }
      CollectiveException at1 = failed(outcomes.get(1), 10_000);
      assertTrue(at1.getMessage().contains(rank2) || at1.getMessage().contains(rank0),
          at1.getMessage());
      assertTrue(at1.getMessage().startsWith("rank 1 of 3, allReduceMean #1: "), at1.getMessage());

      // The ring is broken for good: the next collective fails at once instead of misreading.
      CollectiveException again = assertThrows(CollectiveException.class, () -> ring.rank(0).barrier());
      assertTrue(again.getMessage().contains("broken by an earlier failure"), again.getMessage());
    }
  }

  @Test
  void everyRankFailsWithinTheTimeoutWhenAPeerStopsResponding() throws Exception {
    RingOptions oneSecond = LONG_TIMEOUT.withIoTimeout(Duration.ofSeconds(1));
    CountDownLatch othersDone = new CountDownLatch(2);
    try (InProcessRing ring = InProcessRing.connect(3, oneSecond)) {
      var outcomes = ring.outcomes(g -> {
        if (g.rank() == 2) {
          // Alive, connections open, but never takes part: a hung replica.
          othersDone.await(20, TimeUnit.SECONDS);
          return null;
        }
        try {
          g.allReduceMean(RingAllReduceTest.direct(new float[3_000_000]));
          return null;
        } finally {
          othersDone.countDown();
        }
      }, 30);
      // Both neighbours of rank 2 can tell: rank 0 waits to receive from it, rank 1 to send to it. Rank 1 does not
      // blame rank 0, which waits as well and says so with keepalives. Whichever notices first tells the other.
      String hung = "rank 2 at " + address(ring, 2) + " is hung";
      for (int r = 0; r < 2; r++) {
        CollectiveException e = failed(outcomes.get(r), 4_000);
        String m = e.getMessage();
        assertTrue(m.startsWith("rank " + r + " of 3, allReduceMean #1: " + hung)
            || m.startsWith("rank " + r + " of 3, allReduceMean #1: rank " + (1 - r) + " at "
                + address(ring, 1 - r) + " aborted the ring: rank " + (1 - r) + " of 3, allReduceMean #1: " + hung), m);
        assertTrue(m.contains("neither data nor keepalive, for 1000 ms"), m);
        assertTrue(!m.contains("rank 0 at " + address(ring, 0) + " is hung")
            && !m.contains("rank 1 at " + address(ring, 1) + " is hung"), m);
        assertTrue(outcomes.get(r).elapsedMillis() >= 900, "failed before the timeout");
      }
    }
  }

  @Test
  void aRankThatCrashesMidTransferFailsEveryOtherRank() throws Exception {
    int world = 3;
    int floats = 2_000_000;
    var endpoints = InProcessRing.Endpoints.open(world, LONG_TIMEOUT);
    List<ServerSocketChannel> listeners = endpoints.listeners();
    List<InetSocketAddress> addresses = endpoints.addresses();
    ExecutorService threads = Executors.newFixedThreadPool(world);
    try {
      List<Future<?>> honest = new ArrayList<>();
      for (int r = 0; r < 2; r++) {
        int rank = r;
        honest.add(threads.submit(() -> {
          try (RingAllReduce g =
              RingAllReduce.connect(rank, addresses, listeners.get(rank), LONG_TIMEOUT)) {
            g.allReduceMean(RingAllReduceTest.direct(new float[floats]));
          }
          return null;
        }));
      }
      // Rank 2 speaks the protocol, sends one megabyte of its first segment, then crashes.
      Future<?> crashing = threads.submit(() -> {
        try (RingLinks links =
            RingRendezvous.connect(2, addresses, listeners.get(2), LONG_TIMEOUT)) {
          links.run(Collective.ALL_REDUCE_MEAN, floats, new CrashAfterSending(1 << 20));
        }
        return null;
      });
      Exception crash = assertThrows(Exception.class, () -> crashing.get(30, TimeUnit.SECONDS));
      assertTrue(String.valueOf(crash.getCause().getMessage()).contains("simulated crash"), crash.toString());

      // Each honest rank names the peer it noticed first: rank 2 itself, or a rank that
      // already failed because of it and closed its connections.
      long start = System.nanoTime();
      CollectiveException at0 = causeOf(honest.get(0));
      CollectiveException at1 = causeOf(honest.get(1));
      assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 10_000);
      String rank2 = "rank 2 at " + addresses.get(2);
      assertTrue(at0.getMessage().contains(rank2)
          || at0.getMessage().contains("rank 1 at " + addresses.get(1)), at0.getMessage());
      assertTrue(at1.getMessage().contains(rank2)
          || at1.getMessage().contains("rank 0 at " + addresses.get(0)), at1.getMessage());
      assertTrue(at0.getMessage().contains(rank2) || at1.getMessage().contains(rank2),
          at0.getMessage() + "\n" + at1.getMessage());
      assertTrue(at0.getMessage().contains("allReduceMean #1"), at0.getMessage());
      assertTrue(at1.getMessage().contains("allReduceMean #1"), at1.getMessage());
    } finally {
      threads.shutdownNow();
    }
  }

  @Test
  void aKilledPeerProcessFailsEveryOtherRankFast() throws Exception {
    try (ChildJvm peer = ChildJvm.start(RingPeerProcess.class, List.of("-Xmx128m"), "hold")) {
      var endpoints = InProcessRing.Endpoints.open(2, LONG_TIMEOUT);
      List<ServerSocketChannel> listeners = endpoints.listeners();
      List<InetSocketAddress> addresses = new ArrayList<>(endpoints.addresses());
      int childPort = Integer.parseInt(peer.awaitLine("listening", 60));
      addresses.add(new InetSocketAddress(InProcessRing.LOOPBACK, childPort));
      peer.send("2 " + hostPort(addresses.get(0)) + " " + hostPort(addresses.get(1)) + " "
          + hostPort(addresses.get(2)));
      ExecutorService threads = Executors.newFixedThreadPool(2);
      try {
        List<Future<?>> ranks = new ArrayList<>();
        CountDownLatch joined = new CountDownLatch(2);
        for (int r = 0; r < 2; r++) {
          int rank = r;
          ranks.add(threads.submit(() -> {
            try (RingAllReduce g =
                RingAllReduce.connect(rank, addresses, listeners.get(rank), LONG_TIMEOUT)) {
              joined.countDown();
              g.allReduceMean(RingAllReduceTest.direct(new float[1_000_000]));
            }
            return null;
          }));
        }
        peer.awaitLine("joined", 30);
        assertTrue(joined.await(30, TimeUnit.SECONDS));
        Thread.sleep(200);
        long start = System.nanoTime();
        peer.kill();
        CollectiveException at0 = causeOf(ranks.get(0));
        CollectiveException at1 = causeOf(ranks.get(1));
        assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 10_000);
        assertTrue(at0.getMessage().contains("rank 2 at " + addresses.get(2)), at0.getMessage());
        assertTrue(at1.getMessage().contains("allReduceMean #1"), at1.getMessage());
      } finally {
        threads.shutdownNow();
      }
    }
  }

  @Test
  void anInterruptedRankFailsAtOnceAndKeepsItsInterruptFlag() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(2, LONG_TIMEOUT)) {
      Thread caller = Thread.currentThread();
      Thread interrupter = new Thread(() -> {
        try {
          Thread.sleep(300);
        } catch (InterruptedException ignored) {
          return;
        }
        caller.interrupt();
      });
      interrupter.start();
      long start = System.nanoTime();
      // Rank 1 never joins this collective: only the interrupt can end the wait.
      CollectiveException e = assertThrows(CollectiveException.class,
          () -> ring.rank(0).allReduceMean(RingAllReduceTest.direct(new float[1000])));
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      assertTrue(Thread.interrupted(), "the interrupt flag was swallowed");
      interrupter.join();
      assertTrue(ms < 5_000, "took " + ms + " ms");
      assertTrue(e.getMessage().startsWith("rank 0 of 2, allReduceMean #1: "), e.getMessage());
    }
  }

  @Test
  void ranksThatCallDifferentCollectivesFailSayingWhatEachDoes() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(3, LONG_TIMEOUT)) {
      var outcomes = ring.outcomes(g -> {
        if (g.rank() == 1) {
          g.barrier();
        } else {
          g.allReduceMean(RingAllReduceTest.direct(new float[10]));
        }
        return null;
      }, 30);
      String messages = "";
      for (var o : outcomes) {
        messages += failed(o, 10_000).getMessage() + "\n";
      }
      assertTrue(messages.contains("ranks disagree: rank 1 at " + address(ring, 1)
          + " is in barrier #1 of size 0, this rank in allReduceMean #1 of size 10"), messages);
    }
    try (InProcessRing ring = InProcessRing.connect(2, LONG_TIMEOUT)) {
      var outcomes = ring.outcomes(g -> {
        g.allReduceMean(RingAllReduceTest.direct(new float[10 + g.rank()]));
        return null;
      }, 30);
      String messages = failed(outcomes.get(0), 10_000).getMessage()
          + failed(outcomes.get(1), 10_000).getMessage();
      assertTrue(messages.contains("of size 11, this rank in allReduceMean #1 of size 10"),
          messages);
    }
  }

  @Test
  void aRankWaitingInAnotherCollectiveIsNotMistakenForASlowOne() throws Exception {
    RingOptions options = LONG_TIMEOUT.withIoTimeout(Duration.ofSeconds(20)).withPeerTimeout(Duration.ofSeconds(1));
    try (InProcessRing ring = InProcessRing.connect(2, options)) {
      var outcomes = ring.outcomes(g -> {
        if (g.rank() == 0) {
          g.onRankZero(() -> Thread.sleep(5_000)); // its keepalives say onRankZero #1
        } else {
          g.barrier();
        }
        return null;
      }, 30);
      CollectiveException e = failed(outcomes.get(1), 2_500);
      assertTrue(e.getMessage().startsWith("rank 1 of 2, barrier #1: ranks disagree: rank 0 at " + address(ring, 0)
          + " is in onRankZero #1, this rank in barrier #1"), e.getMessage());
    }
  }

  @Test
  void joinsWhateverOrderThePeersComeUpIn() throws Exception {
    int world = 4;
    var endpoints = InProcessRing.Endpoints.open(world, LONG_TIMEOUT);
    List<ServerSocketChannel> listeners = endpoints.listeners();
    List<InetSocketAddress> addresses = endpoints.addresses();
    // Rank 3's listener is not up yet: rank 2 must retry until it is.
    int latePort = addresses.get(3).getPort();
    listeners.get(3).close();
    ExecutorService threads = Executors.newFixedThreadPool(world);
    try {
      List<Future<Long>> ranks = new ArrayList<>();
      for (int r = 0; r < world; r++) {
        int rank = r;
        ranks.add(threads.submit(() -> {
          Thread.sleep(100L * (world - 1 - rank));
          ServerSocketChannel listener = listeners.get(rank);
          if (rank == 3) {
            Thread.sleep(400);
            listener = ServerSocketChannel.open();
            listener.bind(new InetSocketAddress(InProcessRing.LOOPBACK, latePort));
          }
          try (RingAllReduce g = RingAllReduce.connect(rank, addresses, listener, LONG_TIMEOUT)) {
            double[] v = {rank};
            g.allReduceSum(v);
            return (long) v[0];
          }
        }));
      }
      for (Future<Long> f : ranks) {
        assertEquals(6L, f.get(30, TimeUnit.SECONDS));
      }
    } finally {
      threads.shutdownNow();
    }
  }

  @Test
  void connectFailsNamingTheRankThatNeverCameUp() throws Exception {
    RingOptions quick = LONG_TIMEOUT.withConnectTimeout(Duration.ofMillis(800));
    ServerSocketChannel mine = RingAllReduce.openListener(InProcessRing.LOOPBACK, quick);
    ServerSocketChannel gone = RingAllReduce.openListener(InProcessRing.LOOPBACK, quick);
    List<InetSocketAddress> addresses =
        List.of(InProcessRing.published(mine), InProcessRing.published(gone));
    gone.close();
    long start = System.nanoTime();
    CollectiveException e = assertThrows(CollectiveException.class,
        () -> RingAllReduce.connect(0, addresses, mine, quick));
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    assertTrue(e.getMessage().startsWith("rank 0 of 2, connect: could not connect to rank 1 at "
        + addresses.get(1) + " within the connect timeout"), e.getMessage());
    assertEquals(1, e.peerRank());
    assertTrue(ms >= 700 && ms < 5_000, "took " + ms + " ms");
    assertTrue(!mine.isOpen(), "the listener is closed after a failed join");
  }

  @Test
  void refusesAPeerFromAnotherSession() throws Exception {
    ServerSocketChannel l0 = RingAllReduce.openListener(InProcessRing.LOOPBACK, LONG_TIMEOUT);
    ServerSocketChannel l1 = RingAllReduce.openListener(InProcessRing.LOOPBACK, LONG_TIMEOUT);
    List<InetSocketAddress> addresses =
        List.of(InProcessRing.published(l0), InProcessRing.published(l1));
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      Duration shortJoin = Duration.ofMillis(1500);
      Future<?> r0 = threads.submit(() -> RingAllReduce.connect(0, addresses, l0,
          LONG_TIMEOUT.withSession(7).withConnectTimeout(shortJoin)));
      Future<?> r1 = threads.submit(() -> RingAllReduce.connect(1, addresses, l1,
          LONG_TIMEOUT.withSession(8).withConnectTimeout(shortJoin)));
      CollectiveException e0 = causeOf(r0);
      CollectiveException e1 = causeOf(r1);
      // Neither side is told the other's session: each drops the other's proof, and the dialler says so.
      for (CollectiveException e : List.of(e0, e1)) {
        assertTrue(e.getMessage().contains("last error: closed the connection after our proof: it holds another"
            + " run's secret or another session"), e.getMessage());
      }
    } finally {
      threads.shutdownNow();
    }
  }

  // ---- helpers ----

  /** Rank 2's stand-in: speaks the protocol, then dies after sending {@code limit} bytes. */
  private static final class CrashAfterSending implements RingTransfer {
    private final ByteBuffer out = ByteBuffer.allocateDirect(64 << 10);
    private final ByteBuffer in = ByteBuffer.allocateDirect(64 << 10);
    private final int limit;
    private int sent;

    CrashAfterSending(int limit) {
      this.limit = limit;
    }

    @Override
    public ByteBuffer nextToSend() {
      if (sent >= limit) {
        throw new IllegalStateException("simulated crash");
      }
      sent += out.capacity();
      return out.clear();
    }

    @Override
    public boolean sendComplete() {
      return false;
    }

    @Override
    public ByteBuffer nextToReceive() {
      return in.clear();
    }

    @Override
    public void received() {}
  }

  private static CollectiveException failed(InProcessRing.Outcome<?> outcome, long withinMillis) {
    assertNotNull(outcome.error(), "the rank did not fail");
    assertInstanceOf(CollectiveException.class, outcome.error());
    assertTrue(outcome.elapsedMillis() < withinMillis, "failed only after "
        + outcome.elapsedMillis() + " ms: " + outcome.error().getMessage());
    return (CollectiveException) outcome.error();
  }

  private static CollectiveException causeOf(Future<?> future) {
    Exception e = assertThrows(Exception.class, () -> future.get(30, TimeUnit.SECONDS));
    return assertInstanceOf(CollectiveException.class, e.getCause());
  }

  private static InetSocketAddress address(InProcessRing ring, int rank) {
    return ring.address(rank);
  }

  private static String hostPort(InetSocketAddress a) {
    return a.getHostString() + ":" + a.getPort();
  }
}
