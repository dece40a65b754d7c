package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.util.List;
import org.junit.jupiter.api.Test;

class BarrierRendezvousTest {
  private static WorkerSpec spec(String runId, int attempt) {
    return new WorkerSpec(runId, "file:/tmp/run", attempt, 0, 2, List.of(), List.of(), SyntheticRunSpecs.SCHEDULE,
        FaultPlan.NONE, null, SyntheticRunSpecs.RING, "127.0.0.1", 1, RunSecret.random(), true);
  }

  @Test
  void theRingListenerBindsTheAdvertisedAddressNotTheWildcard() throws Exception {
    InetAddress bind = BarrierRendezvous.listenerAddress("127.0.0.1");
    assertTrue(bind.isLoopbackAddress(), bind.toString());
    try (ServerSocketChannel listener = RingAllReduce.openListener(bind, RingOptions.defaults())) {
      InetSocketAddress local = (InetSocketAddress) listener.getLocalAddress();
      assertFalse(local.getAddress().isAnyLocalAddress(), "bound to " + local);
      assertEquals("127.0.0.1", local.getAddress().getHostAddress());
    }
  }

  @Test
  void readsThePublishedAddressExecutorAndPid() {
    BarrierRendezvous.Peer p = BarrierRendezvous.Peer.parse("[::1]:4567|3|12345");
    assertEquals("0:0:0:0:0:0:0:1", p.address().getHostString());
    assertEquals(4567, p.address().getPort());
    assertEquals("3", p.executorId());
    assertEquals(12345, p.pid());
    assertThrows(IllegalStateException.class, () -> BarrierRendezvous.Peer.parse("10.0.0.1:4567"));
  }

  @Test
  void refusesRanksThatLandedInTheSameJvmNamingThem() {
    List<BarrierRendezvous.Peer> peers = List.of(
        BarrierRendezvous.Peer.parse("10.0.0.1:4000|1|100"),
        BarrierRendezvous.Peer.parse("10.0.0.2:4000|2|100"),
        BarrierRendezvous.Peer.parse("10.0.0.1:4001|1|100"));
    NonRetryableTrainingException e = assertThrows(NonRetryableTrainingException.class,
        () -> BarrierRendezvous.requireOwnJvms(peers));
    assertTrue(e.getMessage().startsWith("ranks 0, 2 share 10.0.0.1 pid 100 (executor 1): each rank needs an"
        + " executor JVM of its own"), e.getMessage());
    // Same pid on different hosts is different JVMs.
    assertDoesNotThrow(() -> BarrierRendezvous.requireOwnJvms(peers.subList(0, 2)));
  }

  @Test
  void ringSessionsDifferPerRunDriverAttemptAndSparkStageAttempt() {
    long base = BarrierRendezvous.session(spec("run-a", 1), 5, 0);
    assertEquals(base, BarrierRendezvous.session(spec("run-a", 1), 5, 0));
    assertNotEquals(base, BarrierRendezvous.session(spec("run-b", 1), 5, 0));
    assertNotEquals(base, BarrierRendezvous.session(spec("run-a", 2), 5, 0));
    assertNotEquals(base, BarrierRendezvous.session(spec("run-a", 1), 6, 0));
    assertNotEquals(base, BarrierRendezvous.session(spec("run-a", 1), 5, 1));
  }
}
