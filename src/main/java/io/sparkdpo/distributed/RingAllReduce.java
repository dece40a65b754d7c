package io.sparkdpo.distributed;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.ServerSocketChannel;
import java.util.List;
import java.util.Objects;

/**
 * {@link AllReduce} over direct TCP connections arranged in a ring (rank r sends to r+1 and
 * receives from r-1), never through a driver.
 *
 * <p>Joining takes two calls so the addresses can be exchanged in between (in a Spark barrier task,
 * with one {@code BarrierTaskContext.allGather}):
 * <pre>{@code
 * ServerSocketChannel listener = RingAllReduce.openListener(localHost, options);
 * String mine = host + ":" + ((InetSocketAddress) listener.getLocalAddress()).getPort();
 * List<InetSocketAddress> all = ... every rank's "host:port", in rank order ...;
 * try (AllReduce group = RingAllReduce.connect(rank, all, listener, options)) { ... }
 * }</pre>
 *
 * <p>Gradients use a chunked, pipelined reduce-scatter + all-gather ({@link RingMeanPlan}): each
 * rank sends and receives 2(W-1)/W of the data, whatever W. Every chunk carries a CRC32C checked on arrival, and
 * lengths from peers are bounded before anything is allocated. A failing, vanished, silent or corrupting peer
 * raises {@link CollectiveException} on every rank, naming it, within {@link RingOptions#peerTimeout()} (the
 * protocol is in {@link RingLinks}).
 */
public final class RingAllReduce implements AllReduce {

  private final int rank;
  private final int worldSize;
  private final RingLinks links;
  private final ChunkStaging staging;
  private boolean closed;

  private RingAllReduce(int rank, int worldSize, RingLinks links, RingOptions options) {
    this.rank = rank;
    this.worldSize = worldSize;
    this.links = links;
    this.staging = links == null ? null : new ChunkStaging(options.chunkBytes());
  }

  /** Opens this rank's listener on an ephemeral port of {@code bindAddress}; publish its port. */
  public static ServerSocketChannel openListener(InetAddress bindAddress, RingOptions options)
      throws IOException {
    return RingRendezvous.openListener(bindAddress, options);
  }

  /**
   * Joins the ring: connects to rank {@code rank + 1}, retrying while it comes up, and accepts
   * rank {@code rank - 1} on {@code listener}, within {@link RingOptions#connectTimeout()}. Takes
   * ownership of {@code listener} and closes it. With one address there is nothing to connect.
   *
   * @param addresses every rank's published listener address, indexed by rank
   * @throws CollectiveException naming the peer that could not be reached or refused us
   */
  public static RingAllReduce connect(int rank, List<InetSocketAddress> addresses,
      ServerSocketChannel listener, RingOptions options) {
    Objects.requireNonNull(addresses, "addresses");
    Objects.requireNonNull(listener, "listener");
    Objects.requireNonNull(options, "options");
    if (addresses.isEmpty() || rank < 0 || rank >= addresses.size()) {
      throw new IllegalArgumentException("rank " + rank + " is not in a group of "
          + addresses.size());
    }
    if (addresses.size() == 1) {
      try {
        listener.close();
      } catch (IOException ignored) {
        // Nothing was ever accepted on it.
      }
      return new RingAllReduce(0, 1, null, options);
    }
    List<InetSocketAddress> copy = List.copyOf(addresses);
    return new RingAllReduce(rank, copy.size(),
        RingRendezvous.connect(rank, copy, listener, options), options);
  }

  /** Parses a published {@code host:port} ({@code [v6addr]:port} for IPv6 literals). */
  public static InetSocketAddress parseAddress(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0 || colon == hostPort.length() - 1) {
      throw new IllegalArgumentException("expected host:port, got '" + hostPort + "'");
    }
    String host = hostPort.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(hostPort.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("expected host:port, got '" + hostPort + "'", e);
    }
    return new InetSocketAddress(host, port);
  }

  @Override
  public int rank() {
    return rank;
  }

  @Override
  public int worldSize() {
    return worldSize;
  }

  @Override
  public void allReduceMean(FloatBuffer data) {
    requireWritable(data);
    if (skip()) {
      return;
    }
    FloatBuffer slice = data.slice();
    links.run(Collective.ALL_REDUCE_MEAN, slice.limit(),
        new RingMeanPlan(slice, rank, worldSize, staging));
  }

  @Override
  public void allReduceSum(double[] values) {
    Objects.requireNonNull(values, "values");
    if (skip()) {
      return;
    }
    ByteBuffer mine = ByteBuffer.allocate(values.length * Double.BYTES)
        .order(ByteOrder.LITTLE_ENDIAN);
    mine.asDoubleBuffer().put(values);
    byte[][] all = gather(Collective.ALL_REDUCE_SUM, values.length, mine.array(), mine.capacity());
    // Every rank adds the same numbers in the same (rank) order: identical bits everywhere.
    double[] sum = new double[values.length];
    for (byte[] block : all) {
      var other = ByteBuffer.wrap(block).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
      for (int i = 0; i < sum.length; i++) {
        sum[i] += other.get(i);
      }
    }
    System.arraycopy(sum, 0, values, 0, sum.length);
  }

  @Override
  public byte[][] allGather(byte[] mine) {
    Objects.requireNonNull(mine, "mine");
    if (skip()) {
      return new byte[][] {mine.clone()};
    }
    return gather(Collective.ALL_GATHER, 0, mine.clone(), -1);
  }

  @Override
  public byte[] broadcast(byte[] fromRankZero) {
    if (rank == 0) {
      Objects.requireNonNull(fromRankZero, "rank 0 must pass the bytes to broadcast");
    }
    if (skip()) {
      return fromRankZero.clone();
    }
    // The length goes first, so the other ranks need not know it; it is bounded before anyone allocates it.
    if (rank == 0 && fromRankZero.length > RingOptions.MAX_MESSAGE_BYTES) {
      throw new IllegalArgumentException("a broadcast of " + fromRankZero.length + " bytes exceeds the limit of "
          + RingOptions.MAX_MESSAGE_BYTES + " bytes");
    }
    byte[] length = ByteBuffer.allocate(Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN)
        .putInt(rank == 0 ? fromRankZero.length : 0).array();
    links.run(Collective.BROADCAST_BYTES, 0, new RingBroadcastPlan(
        RingBroadcastPlan.Region.announcedLength(length), rank, worldSize, staging));
    int n = ByteBuffer.wrap(length).order(ByteOrder.LITTLE_ENDIAN).getInt();
    byte[] payload = rank == 0 ? fromRankZero.clone() : new byte[n];
    links.run(Collective.BROADCAST_BYTES, n, new RingBroadcastPlan(
        RingBroadcastPlan.Region.of(payload), rank, worldSize, staging));
    return payload;
  }

  @Override
  public void broadcast(FloatBuffer data) {
    requireWritable(data);
    if (skip()) {
      return;
    }
    FloatBuffer slice = data.slice();
    links.run(Collective.BROADCAST_FLOATS, slice.limit(), new RingBroadcastPlan(
        RingBroadcastPlan.Region.of(slice), rank, worldSize, staging));
  }

  @Override
  public void barrier() {
    if (skip()) {
      return;
    }
    // A ring all-gather completes on a rank only after every rank's block reached it.
    gather(Collective.BARRIER, 0, new byte[0], 0);
  }

  @Override
  public void onRankZero(Work work) throws Exception {
    if (rank == 0) {
      Objects.requireNonNull(work, "rank 0 must pass its work");
    }
    if (skip()) {
      work.run();
      return;
    }
    links.onRankZero(work);
  }

  @Override
  public void close() {
    closed = true;
    if (links != null) {
      links.close();
    }
  }

  private byte[][] gather(Collective collective, long size, byte[] mine, int expectedLength) {
    if (mine.length > RingOptions.MAX_MESSAGE_BYTES / worldSize) {
      throw new IllegalArgumentException("an all-gather block of " + mine.length + " bytes: the " + worldSize
          + " blocks would exceed the limit of " + RingOptions.MAX_MESSAGE_BYTES + " bytes");
    }
    RingGatherPlan plan = new RingGatherPlan(mine, rank, worldSize, expectedLength);
    links.run(collective, size, plan);
    return plan.blocks();
  }

  private static void requireWritable(FloatBuffer data) {
    Objects.requireNonNull(data, "data");
    if (data.isReadOnly()) {
      throw new IllegalArgumentException("the buffer is read-only; collectives write in place");
    }
  }

  /** True for a group of one, where every collective is the identity. */
  private boolean skip() {
    if (closed) {
      throw new IllegalStateException("the all-reduce group is closed");
    }
    return links == null;
  }
}
