package io.sparkdpo.distributed;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** W ranks of a ring on 127.0.0.1, one thread each, as the barrier tasks would run them. */
final class InProcessRing implements AutoCloseable {

  /** What one rank does. */
  interface RankTask<T> {
    T run(RingAllReduce group) throws Exception;
  }

  /** A rank's result or the exception it threw, and when it finished. */
  record Outcome<T>(T value, Throwable error, long elapsedMillis) {}

  static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

  private final List<RingAllReduce> ranks;
  private final List<InetSocketAddress> addresses;
  private final ExecutorService threads;

  private InProcessRing(List<RingAllReduce> ranks, List<InetSocketAddress> addresses,
      ExecutorService threads) {
    this.ranks = ranks;
    this.addresses = addresses;
    this.threads = threads;
  }

  /** Listeners on 127.0.0.1 and the addresses they publish, indexed by rank. */
  record Endpoints(List<ServerSocketChannel> listeners, List<InetSocketAddress> addresses) {

    static Endpoints open(int count, RingOptions options) throws IOException {
      List<ServerSocketChannel> listeners = new ArrayList<>();
      List<InetSocketAddress> addresses = new ArrayList<>();
      for (int r = 0; r < count; r++) {
        ServerSocketChannel listener = RingAllReduce.openListener(LOOPBACK, options);
        listeners.add(listener);
        addresses.add(published(listener));
      }
      return new Endpoints(listeners, addresses);
    }
  }

  /** Opens W listeners, then joins all ranks concurrently, as barrier tasks would. */
  static InProcessRing connect(int worldSize, RingOptions options) throws Exception {
    Endpoints endpoints = Endpoints.open(worldSize, options);
    List<ServerSocketChannel> listeners = endpoints.listeners();
    List<InetSocketAddress> addresses = endpoints.addresses();
    ExecutorService threads = Executors.newFixedThreadPool(worldSize);
    List<Future<RingAllReduce>> joining = new ArrayList<>();
    for (int r = 0; r < worldSize; r++) {
      int rank = r;
      joining.add(threads.submit(
          () -> RingAllReduce.connect(rank, addresses, listeners.get(rank), options)));
    }
    List<RingAllReduce> ranks = new ArrayList<>();
    for (Future<RingAllReduce> f : joining) {
      ranks.add(f.get(60, TimeUnit.SECONDS));
    }
    return new InProcessRing(ranks, addresses, threads);
  }

  static InetSocketAddress published(ServerSocketChannel listener) throws IOException {
    int port = ((InetSocketAddress) listener.getLocalAddress()).getPort();
    return new InetSocketAddress(LOOPBACK, port);
  }

  RingAllReduce rank(int r) {
    return ranks.get(r);
  }

  /** The address rank {@code r} published. */
  InetSocketAddress address(int r) {
    return addresses.get(r);
  }

  /** Runs {@code task} on every rank at once; fails with the first rank's exception. */
  <T> List<T> onEveryRank(RankTask<T> task) throws Exception {
    List<T> values = new ArrayList<>();
    for (Outcome<T> o : outcomes(task, 60)) {
      if (o.error() != null) {
        throw new AssertionError("a rank failed: " + o.error(), o.error());
      }
      values.add(o.value());
    }
    return values;
  }

  /** Runs {@code task} on every rank at once and reports each rank's outcome. */
  <T> List<Outcome<T>> outcomes(RankTask<T> task, long timeoutSeconds) throws Exception {
    long start = System.nanoTime();
    List<Future<Outcome<T>>> futures = new ArrayList<>();
    for (RingAllReduce group : ranks) {
      futures.add(threads.submit(() -> {
        try {
          T value = task.run(group);
          return new Outcome<>(value, null, millisSince(start));
        } catch (Throwable t) {
          return new Outcome<T>(null, t, millisSince(start));
        }
      }));
    }
    List<Outcome<T>> out = new ArrayList<>();
    for (Future<Outcome<T>> f : futures) {
      try {
        out.add(f.get(timeoutSeconds, TimeUnit.SECONDS));
      } catch (TimeoutException e) {
        throw new AssertionError("a rank hung for more than " + timeoutSeconds + " s", e);
      } catch (ExecutionException e) {
        throw new AssertionError(e.getCause());
      }
    }
    return out;
  }

  private static long millisSince(long start) {
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
  }

  @Override
  public void close() {
    ranks.forEach(RingAllReduce::close);
    threads.shutdownNow();
  }
}
