package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What a peer sends is checked before it is used: every frame's CRC32C (a byte flipped on the wire fails the
 * collective, naming the sender), and every length (a chunk's, an all-gather block's, a broadcast's) before
 * anything is allocated for it.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RingFrameTest {

  private static final RingOptions OPTIONS = RingOptions.defaults()
      .withIoTimeout(Duration.ofSeconds(20)).withConnectTimeout(Duration.ofSeconds(20));
  private static final int BIG = 2_000_000_000;

  @Test
  void aByteFlippedOnTheWireFailsTheCollectiveNamingTheSender() throws Exception {
    var endpoints = InProcessRing.Endpoints.open(2, OPTIONS);
    List<InetSocketAddress> real = endpoints.addresses();
    // Rank 0 reaches rank 1 through a relay that flips one byte half a MiB into the second chunk.
    try (FlippingRelay relay = new FlippingRelay(real.get(1), (3L << 20) / 2)) {
      List<InetSocketAddress> seenByRank0 = List.of(real.get(0), relay.address());
      ExecutorService threads = Executors.newFixedThreadPool(2);
      try {
        List<Future<float[]>> ranks = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
          int rank = r;
          ranks.add(threads.submit(() -> {
            try (RingAllReduce g = RingAllReduce.connect(rank, rank == 0 ? seenByRank0 : real,
                endpoints.listeners().get(rank), OPTIONS)) {
              float[] values = new float[1 << 20];
              Arrays.fill(values, rank + 1);
              FloatBuffer data = RingAllReduceTest.direct(values);
              g.allReduceMean(data);
              data.get(0, values);
              return values;
            }
          }));
        }
        CollectiveException at1 = causeOf(ranks.get(1));
        assertTrue(relay.flipped(), "the relay never reached the byte to flip");
        assertTrue(at1.getMessage().startsWith("rank 1 of 2, allReduceMean #1: checksum mismatch: a frame of "
            + "1048576 bytes from rank 0 at " + real.get(0) + " arrived corrupted"), at1.getMessage());
        assertEquals(0, at1.peerRank());
        // Rank 0 is told why rather than finding a closed socket.
        CollectiveException at0 = causeOf(ranks.get(0));
        assertTrue(at0.getMessage().contains("aborted the ring: rank 1 of 2, allReduceMean #1: checksum mismatch"),
            at0.getMessage());
      } finally {
        threads.shutdownNow();
      }
    }
  }

  @Test
  void aChunkOfAnotherLengthIsRefusedBeforeItIsRead() throws Exception {
    CollectiveException e = honestRankOneFacing(Collective.ALL_REDUCE_MEAN, 1 << 20,
        new Sends(ByteBuffer.allocateDirect(2 << 20)),
        g -> {
          g.allReduceMean(RingAllReduceTest.direct(new float[1 << 20]));
          return null;
        });
    assertTrue(e.getMessage().startsWith("rank 1 of 2, allReduceMean #1: protocol error: rank 0 at "), e.getMessage());
    assertTrue(e.getMessage().contains(" sent a data frame of 2097152 bytes where 1048576 bytes belong"),
        e.getMessage());
    assertEquals(0, e.peerRank());
  }

  @Test
  void anAllGatherBlockAboveTheLimitIsRefusedBeforeItIsAllocated() throws Exception {
    CollectiveException e = honestRankOneFacing(Collective.ALL_GATHER, 0, new Sends(intLe(BIG)),
        g -> g.allGather(new byte[8]));
    assertTrue(e.getMessage().contains(" sent a block of 2000000000 bytes, which with the 8 bytes gathered so far"
        + " exceeds the all-gather limit of 67108864 bytes"), e.getMessage());
    assertEquals(0, e.peerRank());
  }

  @Test
  void aSumBlockOfAnotherLengthIsRefused() throws Exception {
    CollectiveException e = honestRankOneFacing(Collective.ALL_REDUCE_SUM, 2, new Sends(intLe(BIG)),
        g -> {
          g.allReduceSum(new double[2]);
          return null;
        });
    assertTrue(e.getMessage().contains(" sent a block of 2000000000 bytes where every rank's is 16"), e.getMessage());
  }

  @Test
  void aBroadcastLengthAboveTheLimitIsRefusedBeforeItIsAllocated() throws Exception {
    CollectiveException e = honestRankOneFacing(Collective.BROADCAST_BYTES, 0, new Sends(intLe(BIG)),
        g -> g.broadcast((byte[]) null));
    assertTrue(e.getMessage().startsWith("rank 1 of 2, broadcast(byte[]) #1: protocol error: rank 0 at "),
        e.getMessage());
    assertTrue(e.getMessage().contains(" sent a broadcast of 2000000000 bytes, outside the limit of 0 to 67108864"
        + " bytes"), e.getMessage());
  }

  // ---- helpers ----

  /**
   * Rank 0 speaks the protocol but sends {@code transfer}'s bytes in {@code collective}; rank 1 is an honest
   * {@link RingAllReduce} running {@code call}. Returns rank 1's error.
   */
  private static CollectiveException honestRankOneFacing(Collective collective, long size, RingTransfer transfer,
      InProcessRing.RankTask<?> call) throws Exception {
    var endpoints = InProcessRing.Endpoints.open(2, OPTIONS);
    List<InetSocketAddress> addresses = endpoints.addresses();
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      threads.submit(() -> {
        try (RingLinks links = RingRendezvous.connect(0, addresses, endpoints.listeners().get(0), OPTIONS)) {
          links.run(collective, size, transfer);
        }
        return null;
      });
      Future<?> honest = threads.submit(() -> {
        try (RingAllReduce g = RingAllReduce.connect(1, addresses, endpoints.listeners().get(1), OPTIONS)) {
          call.run(g);
        }
        return null;
      });
      long start = System.nanoTime();
      CollectiveException e = causeOf(honest);
      assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 10_000, "refused only at a timeout");
      return e;
    } finally {
      threads.shutdownNow();
    }
  }

  /** Sends one buffer, then waits to receive whatever comes (until the peer aborts). */
  private static final class Sends implements RingTransfer {
    private ByteBuffer out;
    private final ByteBuffer in = ByteBuffer.allocateDirect(64);

    Sends(ByteBuffer out) {
      this.out = out;
    }

    @Override
    public ByteBuffer nextToSend() {
      ByteBuffer b = out;
      out = null;
      return b;
    }

    @Override
    public boolean sendComplete() {
      return out == null;
    }

    @Override
    public ByteBuffer nextToReceive() {
      return in.clear().limit(4);
    }

    @Override
    public void received() {}
  }

  private static ByteBuffer intLe(int value) {
    return ByteBuffer.allocate(Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN).putInt(value).flip();
  }

  private static CollectiveException causeOf(Future<?> future) {
    Exception e = assertThrows(Exception.class, () -> future.get(30, TimeUnit.SECONDS));
    return assertInstanceOf(CollectiveException.class, e.getCause(), () -> "got " + e.getCause());
  }

  /**
   * A TCP relay on 127.0.0.1 for one connection: copies both ways and flips the bits of the byte at
   * {@code flipAt} of the stream towards {@code target}.
   */
  static final class FlippingRelay implements AutoCloseable {
    private final ServerSocket server;
    private final InetSocketAddress target;
    private final long flipAt;
    private final AtomicLong forwarded = new AtomicLong();
    private final List<Socket> sockets = new ArrayList<>();
    private final Thread acceptor;

    FlippingRelay(InetSocketAddress target, long flipAt) throws IOException {
      this.server = new ServerSocket(0, 1, InProcessRing.LOOPBACK);
      this.target = target;
      this.flipAt = flipAt;
      this.acceptor = new Thread(this::serve, "flipping-relay");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    InetSocketAddress address() {
      return new InetSocketAddress(InProcessRing.LOOPBACK, server.getLocalPort());
    }

    boolean flipped() {
      return forwarded.get() > flipAt;
    }

    private void serve() {
      try {
        Socket in = server.accept();
        Socket out = new Socket(target.getAddress(), target.getPort());
        synchronized (sockets) {
          sockets.add(in);
          sockets.add(out);
        }
        copy(in.getInputStream(), out.getOutputStream(), true);
        copy(out.getInputStream(), in.getOutputStream(), false);
      } catch (IOException ignored) {
        // Closed by the test.
      }
    }

    private void copy(InputStream from, OutputStream to, boolean flip) {
      Thread t = new Thread(() -> {
        byte[] buffer = new byte[64 << 10];
        try {
          for (int n = from.read(buffer); n >= 0; n = from.read(buffer)) {
            if (flip) {
              long start = forwarded.getAndAdd(n);
              if (start <= flipAt && flipAt < start + n) {
                buffer[(int) (flipAt - start)] ^= (byte) 0xFF;
              }
            }
            to.write(buffer, 0, n);
          }
        } catch (IOException ignored) {
          // A side closed.
        }
      }, "flipping-relay-copy");
      t.setDaemon(true);
      t.start();
    }

    @Override
    public void close() throws IOException {
      server.close();
      synchronized (sockets) {
        for (Socket s : sockets) {
          s.close();
        }
      }
    }
  }
}
