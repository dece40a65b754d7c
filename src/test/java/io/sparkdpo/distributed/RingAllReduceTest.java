package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class RingAllReduceTest {

  /** Small chunks, so that even short arrays travel as many pipelined chunks. */
  private static final RingOptions SMALL_CHUNKS = RingOptions.defaults()
      .withChunkBytes(1000).withIoTimeout(Duration.ofSeconds(30))
      .withConnectTimeout(Duration.ofSeconds(30));

  @ParameterizedTest(name = "W={0}")
  @ValueSource(ints = {1, 2, 3, 4})
  void meanMatchesADoublePrecisionReductionAndIsBitwiseIdenticalOnEveryRank(int world)
      throws Exception {
    int[] lengths = {0, 1, world - 1, world, world + 1, 7, 13, 251, 1009, 65_537, 200_003};
    try (InProcessRing ring = InProcessRing.connect(world, SMALL_CHUNKS)) {
      for (int length : lengths) {
        float[][] inputs = gradients(world, length, 1000L * length + world);
        List<float[]> results = ring.onEveryRank(g -> reduceInPlace(g, inputs[g.rank()]));
        assertMean(inputs, results, "W=" + world + " n=" + length);
      }
    }
  }

  @Test
  void reducesMillionsOfFloatsWithDefaultChunksOnFourRanks() throws Exception {
    int world = 4;
    int length = 3_000_017;
    RingOptions options = RingOptions.defaults().withIoTimeout(Duration.ofSeconds(60));
    try (InProcessRing ring = InProcessRing.connect(world, options)) {
      float[][] inputs = gradients(world, length, 42);
      List<float[]> results = ring.onEveryRank(g -> reduceInPlace(g, inputs[g.rank()]));
      assertMean(inputs, results, "W=4 n=" + length);
    }
  }

  @Test
  void reducesOnlyBetweenPositionAndLimitAndLeavesBothUnchanged() throws Exception {
    int world = 3;
    try (InProcessRing ring = InProcessRing.connect(world, SMALL_CHUNKS)) {
      List<float[]> results = ring.onEveryRank(g -> {
        FloatBuffer buffer = ByteBuffer.allocateDirect(10 * Float.BYTES)
            .order(ByteOrder.nativeOrder()).asFloatBuffer();
        for (int i = 0; i < 10; i++) {
          buffer.put(i, -1f);
        }
        for (int i = 2; i < 7; i++) {
          buffer.put(i, g.rank() * 10 + i);
        }
        buffer.position(2).limit(7);
        g.allReduceMean(buffer);
        assertEquals(2, buffer.position());
        assertEquals(7, buffer.limit());
        float[] all = new float[10];
        buffer.clear().get(all);
        return all;
      });
      // Mean of r*10 + i over r = 0, 1, 2 is 10 + i.
      float[] expected = {-1, -1, 12, 13, 14, 15, 16, -1, -1, -1};
      for (float[] r : results) {
        assertArrayEquals(expected, r);
      }
    }
  }

  @Test
  void reducesBigEndianAndHeapBuffersToo() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(2, SMALL_CHUNKS)) {
      List<float[]> results = ring.onEveryRank(g -> {
        FloatBuffer buffer = g.rank() == 0
            ? ByteBuffer.allocateDirect(4 * 301).order(ByteOrder.BIG_ENDIAN).asFloatBuffer()
            : FloatBuffer.allocate(301);
        for (int i = 0; i < 301; i++) {
          buffer.put(i, g.rank() == 0 ? i : 3 * i);
        }
        g.allReduceMean(buffer);
        float[] out = new float[301];
        buffer.get(0, out);
        return out;
      });
      for (int i = 0; i < 301; i++) {
        assertEquals(2f * i, results.get(0)[i]);
        assertEquals(2f * i, results.get(1)[i]);
      }
    }
  }

  @ParameterizedTest(name = "W={0}")
  @ValueSource(ints = {2, 3, 4})
  void smallCollectivesAgreeOnEveryRank(int world) throws Exception {
    try (InProcessRing ring = InProcessRing.connect(world, SMALL_CHUNKS)) {
      // allReduceSum: rank order, so the same bits everywhere; values chosen to round differently
      // in different orders.
      List<double[]> sums = ring.onEveryRank(g -> {
        double[] v = {0.1 * (g.rank() + 1), 1e16, -1e16 + g.rank(), g.rank()};
        g.allReduceSum(v);
        return v;
      });
      double[] expected = {0.0, 0.0, 0.0, 0.0};
      for (int r = 0; r < world; r++) {
        double[] v = {0.1 * (r + 1), 1e16, -1e16 + r, r};
        for (int i = 0; i < v.length; i++) {
          expected[i] += v[i];
        }
      }
      for (double[] s : sums) {
        assertArrayEquals(expected, s, 0.0);
      }

      // allGather with lengths 0, 3, 6, ... and longs.
      List<byte[][]> gathered = ring.onEveryRank(g -> g.allGather(block(g.rank())));
      for (byte[][] all : gathered) {
        assertEquals(world, all.length);
        for (int r = 0; r < world; r++) {
          assertArrayEquals(block(r), all[r]);
        }
      }
      List<long[]> longs = ring.onEveryRank(g -> g.allGatherLong((1L << 40) - 7L * g.rank()));
      for (long[] all : longs) {
        for (int r = 0; r < world; r++) {
          assertEquals((1L << 40) - 7L * r, all[r]);
        }
      }

      // broadcast of bytes: several chunks, and an empty message.
      byte[] message = new byte[5003];
      new Random(5).nextBytes(message);
      List<byte[]> received = ring.onEveryRank(g -> g.broadcast(g.rank() == 0 ? message : null));
      for (byte[] m : received) {
        assertArrayEquals(message, m);
      }
      List<byte[]> empty = ring.onEveryRank(g -> g.broadcast(g.rank() == 0 ? new byte[0] : null));
      for (byte[] m : empty) {
        assertEquals(0, m.length);
      }

      // broadcast of floats: rank 0's bits everywhere, the others' values overwritten.
      float[][] params = gradients(world, 10_007, 9);
      List<float[]> after = ring.onEveryRank(g -> {
        FloatBuffer buffer = direct(params[g.rank()]);
        g.broadcast(buffer);
        float[] out = new float[buffer.limit()];
        buffer.get(0, out);
        return out;
      });
      for (float[] p : after) {
        assertArrayEquals(params[0], p);
      }
    }
  }

  @Test
  void barrierReleasesNoRankBeforeTheLastHasArrived() throws Exception {
    int world = 4;
    AtomicLongArray entered = new AtomicLongArray(world);
    AtomicLongArray left = new AtomicLongArray(world);
    try (InProcessRing ring = InProcessRing.connect(world, SMALL_CHUNKS)) {
      ring.onEveryRank(g -> {
        Thread.sleep(150L * ((g.rank() + 2) % world));
        entered.set(g.rank(), System.nanoTime());
        g.barrier();
        left.set(g.rank(), System.nanoTime());
        return null;
      });
    }
    long lastEntry = 0;
    for (int r = 0; r < world; r++) {
      lastEntry = Math.max(lastEntry, entered.get(r));
    }
    for (int r = 0; r < world; r++) {
      assertTrue(left.get(r) >= lastEntry, "rank " + r + " left the barrier early");
    }
  }

  @Test
  void groupOfOneIsTheIdentityLikeLocalAllReduce() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(1, SMALL_CHUNKS);
        LocalAllReduce local = new LocalAllReduce()) {
      for (AllReduce g : List.<AllReduce>of(ring.rank(0), local)) {
        assertEquals(0, g.rank());
        assertEquals(1, g.worldSize());
        FloatBuffer data = direct(new float[] {1.5f, -2f, 3f});
        g.allReduceMean(data);
        assertEquals(-2f, data.get(1));
        double[] d = {0.25, 4};
        g.allReduceSum(d);
        assertArrayEquals(new double[] {0.25, 4}, d);
        assertArrayEquals(new byte[] {1, 2}, g.allGather(new byte[] {1, 2})[0]);
        assertArrayEquals(new long[] {99}, g.allGatherLong(99));
        assertArrayEquals(new byte[] {3}, g.broadcast(new byte[] {3}));
        g.barrier();
      }
    }
  }

  @Test
  void parsesPublishedAddresses() throws Exception {
    assertEquals(4711, RingAllReduce.parseAddress("127.0.0.1:4711").getPort());
    assertEquals("127.0.0.1", RingAllReduce.parseAddress("127.0.0.1:4711").getHostString());
    assertEquals(InetAddress.getByName("::1"),
        RingAllReduce.parseAddress("[::1]:80").getAddress());
    for (String bad : new String[] {"host", "host:", ":80", "host:eighty"}) {
      try {
        RingAllReduce.parseAddress(bad);
        fail("accepted " + bad);
      } catch (IllegalArgumentException expected) {
        assertTrue(expected.getMessage().contains(bad));
      }
    }
  }

  // ---- helpers ----

  /** Gradient-like values: mixed signs and magnitudes spanning several decades. */
  static float[][] gradients(int world, int length, long seed) {
    Random random = new Random(seed);
    float[][] out = new float[world][length];
    for (int r = 0; r < world; r++) {
      for (int i = 0; i < length; i++) {
        out[r][i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(7) - 4));
      }
    }
    return out;
  }

  static FloatBuffer direct(float[] values) {
    FloatBuffer buffer = ByteBuffer.allocateDirect(values.length * Float.BYTES)
        .order(ByteOrder.nativeOrder()).asFloatBuffer();
    buffer.put(0, values);
    return buffer;
  }

  private static float[] reduceInPlace(AllReduce group, float[] input) {
    FloatBuffer buffer = direct(input);
    group.allReduceMean(buffer);
    float[] out = new float[input.length];
    buffer.get(0, out);
    return out;
  }

  /**
   * Every rank holds the same bits, and each element is within float rounding of the exact mean:
   * W-1 float additions and one division, each off by at most half an ulp of its result.
   */
  private static void assertMean(float[][] inputs, List<float[]> results, String what) {
    int world = inputs.length;
    int length = inputs[0].length;
    float[] first = results.get(0);
    assertNotNull(first);
    assertEquals(length, first.length, what);
    for (int r = 1; r < world; r++) {
      assertArrayEquals(bits(first), bits(results.get(r)), what + ": rank " + r
          + " differs from rank 0 in its bits");
    }
    double eps = Math.ulp(1.0f);
    for (int i = 0; i < length; i++) {
      double sum = 0;
      double magnitude = 0;
      for (int r = 0; r < world; r++) {
        sum += inputs[r][i];
        magnitude += Math.abs(inputs[r][i]);
      }
      double exact = sum / world;
      double tolerance = eps * ((world - 1) * magnitude / world + Math.abs(exact)) + Float.MIN_VALUE;
      if (Math.abs(first[i] - exact) > tolerance) {
        fail(what + ": element " + i + " is " + first[i] + ", exact mean " + exact
            + ", tolerance " + tolerance);
      }
    }
  }

  private static int[] bits(float[] values) {
    int[] out = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = Float.floatToRawIntBits(values[i]);
    }
    return out;
  }

  private static byte[] block(int rank) {
    byte[] b = new byte[3 * rank];
    Arrays.fill(b, (byte) (rank + 1));
    return b;
  }
}
