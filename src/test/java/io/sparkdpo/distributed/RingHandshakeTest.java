package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The ring's handshake: only a peer holding the run's secret, in this session, world size and rank, joins; anyone
 * else is told nothing but a random nonce and dropped, and cannot stall the join.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RingHandshakeTest {
  private static final long SESSION = 42;
  private static final RingOptions OPTIONS = RingOptions.defaults().withSession(SESSION)
      .withIoTimeout(Duration.ofSeconds(20)).withConnectTimeout(Duration.ofSeconds(20))
      .withHandshakeTimeout(Duration.ofMillis(500));

  @Test
  void proofsBindBothNoncesTheSessionTheWorldSizeTheRanksTheRoleAndTheKey() {
    RunSecret key = RunSecret.random();
    byte[] nc = RunSecret.nonce(RingHandshake.NONCE_BYTES);
    byte[] nl = RunSecret.nonce(RingHandshake.NONCE_BYTES);
    byte[] proof = RingHandshake.connectorProof(key, nc, nl, SESSION, 2, 1, 0);
    assertEquals(RingHandshake.PROOF_BYTES, proof.length);
    assertArrayEquals(proof, RingHandshake.connectorProof(key, nc.clone(), nl.clone(), SESSION, 2, 1, 0));
    List<byte[]> others = List.of(
        RingHandshake.connectorProof(RunSecret.random(), nc, nl, SESSION, 2, 1, 0),
        RingHandshake.connectorProof(key, RunSecret.nonce(32), nl, SESSION, 2, 1, 0),
        RingHandshake.connectorProof(key, nc, RunSecret.nonce(32), SESSION, 2, 1, 0),
        RingHandshake.connectorProof(key, nl, nc, SESSION, 2, 1, 0),
        RingHandshake.connectorProof(key, nc, nl, SESSION + 1, 2, 1, 0),
        RingHandshake.connectorProof(key, nc, nl, SESSION, 3, 1, 0),
        RingHandshake.connectorProof(key, nc, nl, SESSION, 2, 0, 1),
        RingHandshake.connectorProof(key, nc, nl, SESSION, 2, 1, 1),
        RingHandshake.listenerProof(key, nc, nl, SESSION, 2, 1, 0),
        RingHandshake.listenerProof(key, nc, nl, SESSION, 2, 0, 1));
    for (int i = 0; i < others.size(); i++) {
      assertFalse(Arrays.equals(proof, others.get(i)), "variation " + i + " gave the same proof");
    }
  }

  @Test
  void onlyAWellFormedHelloOfThisVersionCarriesANonce() {
    byte[] nonce = RunSecret.nonce(RingHandshake.NONCE_BYTES);
    assertArrayEquals(nonce, RingHandshake.connectorNonce(RingHandshake.hello(nonce)));
    ByteBuffer oldVersion = RingHandshake.hello(nonce).putInt(4, 1);
    assertNull(RingHandshake.connectorNonce(oldVersion));
    ByteBuffer otherMagic = RingHandshake.hello(nonce).putInt(0, 0x47455420); // "GET "
    assertNull(RingHandshake.connectorNonce(otherMagic));
    assertNull(RingHandshake.connectorNonce(ByteBuffer.wrap(RingIntruder.oldGreeting(SESSION, 2, 1, 0))));
  }

  /**
   * Rank 0 joins alone first (rank 1 comes up later), so its listener serves only the intruders: none of them is
   * told anything but a fresh random nonce, every one is dropped, and rank 0 still joins rank 1 afterwards.
   */
  @Test
  void intrudersAreToldNothingButAFreshNonceAndAreDropped() throws Exception {
    RunSecret key = RunSecret.random();
    RingOptions options = OPTIONS.withSecret(key);
    InProcessRing.Endpoints endpoints = InProcessRing.Endpoints.open(2, options);
    InetSocketAddress rank0 = endpoints.addresses().get(0);
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      Future<RingAllReduce> first = threads.submit(
          () -> RingAllReduce.connect(0, endpoints.addresses(), endpoints.listeners().get(0), options));

      // Version 1's greeting with another session used to be answered with the listener's own greeting.
      try (Socket old = RingIntruder.sending(rank0, RingIntruder.oldGreeting(SESSION + 1, 2, 1, 0))) {
        assertArrayEquals(new byte[0], RingIntruder.untilClosed(old), "an old-style greeting was answered");
      }
      try (Socket garbage = RingIntruder.sending(rank0,
          "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n".getBytes(StandardCharsets.US_ASCII))) {
        assertArrayEquals(new byte[0], RingIntruder.untilClosed(garbage), "garbage was answered");
      }
      Set<String> nonces = new HashSet<>();
      byte[] nc = RunSecret.nonce(RingHandshake.NONCE_BYTES);
      List<RingIntruder.Forger> forged = List.of(
          (c, l) -> RingHandshake.connectorProof(RunSecret.random(), c, l, SESSION, 2, 1, 0), // wrong key
          (c, l) -> RingHandshake.connectorProof(key, c, l, SESSION + 1, 2, 1, 0), // an earlier attempt's session
          (c, l) -> RingHandshake.connectorProof(key, c, l, SESSION, 3, 1, 0), // another world size
          (c, l) -> RingHandshake.connectorProof(key, c, l, SESSION, 2, 0, 1), // rank 0's own direction
          (c, l) -> RingHandshake.listenerProof(key, c, l, SESSION, 2, 1, 0), // the other role's proof
          (c, l) -> new byte[RingHandshake.PROOF_BYTES]);
      for (int i = 0; i < forged.size(); i++) {
        RingIntruder.Told told = RingIntruder.handshake(rank0, nc, forged.get(i));
        assertEquals(RingHandshake.NONCE_BYTES, told.nonce().length);
        assertArrayEquals(new byte[0], told.afterProof(), "forgery " + i + " was answered");
        nonces.add(Arrays.toString(told.nonce()));
      }
      // A proof that was right for an earlier nonce of the listener's is worthless now (a replay).
      byte[][] earlier = new byte[1][];
      RingIntruder.handshake(rank0, nc, (c, l) -> {
        earlier[0] = RingHandshake.connectorProof(key, c, l, SESSION, 2, 1, 0);
        return new byte[RingHandshake.PROOF_BYTES];
      });
      RingIntruder.Told replayed = RingIntruder.handshake(rank0, nc, (c, l) -> earlier[0]);
      assertArrayEquals(new byte[0], replayed.afterProof(), "a replayed proof was accepted");
      nonces.add(Arrays.toString(replayed.nonce()));
      assertEquals(forged.size() + 1, nonces.size(), "the listener's nonces repeat");
      assertFalse(first.isDone(), "rank 0 stopped waiting for rank 1");

      Future<RingAllReduce> second = threads.submit(
          () -> RingAllReduce.connect(1, endpoints.addresses(), endpoints.listeners().get(1), options));
      try (RingAllReduce g0 = first.get(20, TimeUnit.SECONDS); RingAllReduce g1 = second.get(20, TimeUnit.SECONDS)) {
        Future<double[]> at1 = threads.submit(() -> sum(g1, 1));
        assertArrayEquals(new double[] {1}, sum(g0, 0));
        assertArrayEquals(new double[] {1}, at1.get(20, TimeUnit.SECONDS));
      }
      assertThrows(ConnectException.class, () -> RingIntruder.idle(rank0).close(),
          "the listener stays open after the join");
    } finally {
      threads.shutdownNow();
    }
  }

  /**
   * Idle connections, garbage, an old greeting and a flood of more connections than the listener serves at once,
   * all queued before the ranks arrive: with a handshake timeout longer than the test, only serving candidates
   * concurrently lets the ring join (one at a time, the first idle connection held the listener until the connect
   * timeout).
   */
  @Test
  void idleConnectionsGarbageAndAFloodQueuedFirstDoNotHoldUpTheJoin() throws Exception {
    RingOptions options = OPTIONS.withSecret(RunSecret.random()).withHandshakeTimeout(Duration.ofSeconds(60));
    int world = 3;
    InProcessRing.Endpoints endpoints = InProcessRing.Endpoints.open(world, options);
    List<Socket> intruders = new ArrayList<>();
    ExecutorService threads = Executors.newFixedThreadPool(world);
    try {
      for (InetSocketAddress listener : endpoints.addresses()) {
        intruders.add(RingIntruder.idle(listener));
        intruders.add(RingIntruder.sending(listener, "hello\n".getBytes(StandardCharsets.US_ASCII)));
        intruders.add(RingIntruder.sending(listener, RingIntruder.oldGreeting(SESSION, world, 2, 0)));
        intruders.add(RingIntruder.idle(listener));
      }
      for (int i = 0; i < RingRendezvous.MAX_CANDIDATES + 8; i++) {
        intruders.add(RingIntruder.idle(endpoints.addresses().get(0)));
      }
      long start = System.nanoTime();
      List<Future<RingAllReduce>> joining = new ArrayList<>();
      for (int r = 0; r < world; r++) {
        int rank = r;
        joining.add(threads.submit(
            () -> RingAllReduce.connect(rank, endpoints.addresses(), endpoints.listeners().get(rank), options)));
      }
      List<RingAllReduce> groups = new ArrayList<>();
      try {
        for (Future<RingAllReduce> f : joining) {
          groups.add(f.get(30, TimeUnit.SECONDS));
        }
        long joinMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(joinMs < 5_000, "joining took " + joinMs + " ms");
        List<Future<double[]>> sums = new ArrayList<>();
        for (RingAllReduce g : groups) {
          sums.add(threads.submit(() -> sum(g, g.rank())));
        }
        for (Future<double[]> s : sums) {
          assertArrayEquals(new double[] {3}, s.get(20, TimeUnit.SECONDS));
        }
      } finally {
        groups.forEach(RingAllReduce::close);
      }
      for (Socket s : intruders) {
        assertArrayEquals(new byte[0], RingIntruder.untilClosed(s), "an intruder was told something");
      }
    } finally {
      RingIntruder.closeAll(intruders);
      threads.shutdownNow();
    }
  }

  /** An impostor on the right neighbour's port that cannot prove the secret is never taken for rank 1. */
  @Test
  void theDiallerRefusesAListenerThatCannotProveTheSecret() throws Exception {
    RunSecret other = RunSecret.random();
    assertImpostorRefused(RunSecret.random(), () -> RunSecret.nonce(RingHandshake.NONCE_BYTES),
        (nc, nl) -> RingHandshake.listenerProof(other, nc, nl, SESSION, 2, 1, 0));
  }

  /**
   * An impostor replaying the listener's side of an earlier genuine handshake (its nonce and its proof, made with
   * the real key) is refused: the dialler's fresh nonce makes the recorded answer wrong.
   */
  @Test
  void theDiallerRefusesAReplayedAnswer() throws Exception {
    RunSecret key = RunSecret.random();
    byte[] recordedNc = RunSecret.nonce(RingHandshake.NONCE_BYTES);
    byte[] recordedNl = RunSecret.nonce(RingHandshake.NONCE_BYTES);
    byte[] recordedAnswer = RingHandshake.listenerProof(key, recordedNc, recordedNl, SESSION, 2, 1, 0);
    assertImpostorRefused(key, recordedNl::clone, (nc, nl) -> recordedAnswer);
  }

  private static void assertImpostorRefused(RunSecret key, Supplier<byte[]> nonces, RingIntruder.Forger answer)
      throws Exception {
    RingOptions options = OPTIONS.withSecret(key).withConnectTimeout(Duration.ofMillis(2000));
    ServerSocketChannel mine = RingAllReduce.openListener(InProcessRing.LOOPBACK, options);
    AtomicInteger dials = new AtomicInteger();
    try (ServerSocket impostor = new ServerSocket(0, 50, InProcessRing.LOOPBACK)) {
      List<InetSocketAddress> addresses = List.of(InProcessRing.published(mine),
          new InetSocketAddress(InProcessRing.LOOPBACK, impostor.getLocalPort()));
      Thread answering = new Thread(() -> impersonate(impostor, dials, nonces, answer));
      answering.setDaemon(true);
      answering.start();
      CollectiveException e = assertThrows(CollectiveException.class,
          () -> RingAllReduce.connect(0, addresses, mine, options));
      assertEquals(1, e.peerRank());
      assertTrue(e.getMessage().startsWith("rank 0 of 2, connect: could not connect to rank 1 at " + addresses.get(1)
          + " within the connect timeout"), e.getMessage());
      assertTrue(e.getMessage().contains("last error: the listener answered with a wrong proof: it is not rank 1 of"
          + " this run and attempt"), e.getMessage());
      assertTrue(dials.get() >= 2, "rank 0 gave up after " + dials.get() + " dial(s) instead of retrying");
    }
  }

  /** Plays rank 1's listener: sends the nonce it is given, then the answer it is given, to every dial. */
  private static void impersonate(ServerSocket impostor, AtomicInteger dials, Supplier<byte[]> nonces,
      RingIntruder.Forger answer) {
    while (!impostor.isClosed()) {
      try (Socket s = impostor.accept()) {
        dials.incrementAndGet();
        s.setSoTimeout(5_000);
        InputStream in = s.getInputStream();
        OutputStream out = s.getOutputStream();
        byte[] nc = RingHandshake.connectorNonce(ByteBuffer.wrap(in.readNBytes(RingHandshake.HELLO_BYTES)));
        byte[] nl = nonces.get();
        out.write(nl);
        in.readNBytes(RingHandshake.PROOF_BYTES);
        out.write(answer.proof(nc, nl));
        out.flush();
        in.read(); // until the dialler hangs up
      } catch (IOException ignored) {
        // The next dial, or the end of the test.
      }
    }
  }

  private static double[] sum(AllReduce group, int value) {
    double[] v = {value};
    group.allReduceSum(v);
    return v;
  }
}
