package io.sparkdpo.distributed;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * One rank of a ring in its own JVM, driven over stdin/stdout by {@link ChildJvm}: prints
 * {@code listening <port>}, reads {@code <rank> <host:port>...}, joins, prints {@code joined}, then
 * either holds its connections without ever calling a collective ({@code hold}), times
 * all-reduces of the mean ({@code bench <floats> <warmup> <iterations> <chunkBytes>}), or all-reduces
 * {@code <floats>} floats until stopped, printing {@code looping} after the first
 * ({@code loop <floats> <peerTimeoutMs>}).
 */
public final class RingPeerProcess {

  /** The key every process of these tests shares (each JVM derives the same one), as a run's tasks share theirs. */
  static final RunSecret SECRET = RunSecret.derivedFrom("ring-peer-process test key".getBytes(StandardCharsets.UTF_8),
      "ring-peer-process");

  private RingPeerProcess() {}

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    int chunkBytes = mode.equals("bench") ? Integer.parseInt(args[4]) : RingOptions.DEFAULT_CHUNK_BYTES;
    RingOptions options = RingOptions.defaults().withChunkBytes(chunkBytes)
        .withIoTimeout(Duration.ofSeconds(120)).withConnectTimeout(Duration.ofSeconds(60)).withSecret(SECRET);
    if (mode.equals("loop")) {
      options = options.withPeerTimeout(Duration.ofMillis(Long.parseLong(args[2])));
    }
    ServerSocketChannel listener =
        RingAllReduce.openListener(InetAddress.getLoopbackAddress(), options);
    System.out.println("listening " + ((InetSocketAddress) listener.getLocalAddress()).getPort());
    BufferedReader stdin =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String[] plan = stdin.readLine().trim().split(" ");
    int rank = Integer.parseInt(plan[0]);
    List<InetSocketAddress> addresses = new ArrayList<>();
    for (int i = 1; i < plan.length; i++) {
      addresses.add(RingAllReduce.parseAddress(plan[i]));
    }
    try (RingAllReduce group = RingAllReduce.connect(rank, addresses, listener, options)) {
      System.out.println("joined");
      if (mode.equals("hold")) {
        Thread.sleep(Long.MAX_VALUE);
      }
      if (mode.equals("loop")) {
        loop(group, Integer.parseInt(args[1]));
      }
      bench(group, Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]));
    }
    System.out.println("done");
  }

  /** All-reduces until the process is stopped or killed. */
  private static void loop(AllReduce group, int floats) {
    FloatBuffer data = ByteBuffer.allocateDirect(floats * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
    for (long round = 0; ; round++) {
      group.allReduceMean(data);
      if (round == 0) {
        System.out.println("looping");
      }
    }
  }

  /**
   * Each round: fill, barrier, time one all-reduce, then check every element against the exact
   * mean and every rank's bits against rank 0's. Prints the slowest rank's time per round.
   */
  private static void bench(AllReduce group, int floats, int warmup, int iterations) {
    int world = group.worldSize();
    FloatBuffer gradient = ByteBuffer.allocateDirect(floats * Float.BYTES)
        .order(ByteOrder.nativeOrder()).asFloatBuffer();
    for (int round = 0; round < warmup + iterations; round++) {
      for (int i = 0; i < floats; i++) {
        gradient.put(i, group.rank() + 1 + (i + round) % 7);
      }
      group.barrier();
      long start = System.nanoTime();
      group.allReduceMean(gradient);
      long nanos = System.nanoTime() - start;
      long checksum = 0;
      for (int i = 0; i < floats; i++) {
        // (1 + ... + W)/W + k is exact in float for W = 2 and 4.
        float expected = (world + 1) / 2f + (i + round) % 7;
        float got = gradient.get(i);
        if (got != expected) {
          throw new IllegalStateException("rank " + group.rank() + " element " + i + " is " + got
              + ", expected " + expected);
        }
        checksum = checksum * 31 + Float.floatToRawIntBits(got);
      }
      long[] checksums = group.allGatherLong(checksum);
      long[] times = group.allGatherLong(nanos);
      long slowest = 0;
      for (int r = 0; r < world; r++) {
        if (checksums[r] != checksums[0]) {
          throw new IllegalStateException("rank " + r + " holds different bits than rank 0");
        }
        slowest = Math.max(slowest, times[r]);
      }
      if (group.rank() == 0 && round >= warmup) {
        System.out.println("result " + slowest);
      }
    }
  }
}
