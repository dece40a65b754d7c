package io.sparkdpo.distributed;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.spark.BarrierTaskContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Connects the ranks of a barrier stage into a ring: each task opens its ring listener, publishes
 * {@code host:port|executor|pid} with ONE {@code BarrierTaskContext.allGather} (about a second, whatever the
 * size), checks that ranks that need their own JVM got one, and joins the ring directly over TCP. The ring's
 * session is a hash of the run, the driver's attempt and Spark's stage attempt, so a straggler of an earlier
 * attempt cannot join. Peers authenticate with the run's secret ({@link RingHandshake}), which reaches each task
 * inside its {@link WorkerSpec}.
 */
final class BarrierRendezvous {
  private static final Logger LOG = LoggerFactory.getLogger(BarrierRendezvous.class);

  private BarrierRendezvous() {}

  /** A rank's entry in the all-gather. */
  record Peer(InetSocketAddress address, String executorId, long pid) {
    static Peer parse(String published) {
      String[] parts = published.split("\\|");
      if (parts.length != 3) {
        throw new IllegalStateException("malformed rendezvous message '" + published + "'");
      }
      return new Peer(RingAllReduce.parseAddress(parts[0]), parts[1], Long.parseLong(parts[2]));
    }
  }

  static AllReduce join(BarrierTaskContext barrier, WorkerSpec spec, String host, String executorId, long pid) {
    if (spec.worldSize() == 1) {
      return new LocalAllReduce(); // nothing to exchange: skip the allGather's second
    }
    RingOptions options = spec.ring().toOptions(session(spec, barrier.stageId(), barrier.stageAttemptNumber()),
        spec.secret());
    ServerSocketChannel listener;
    int port;
    try {
      listener = RingAllReduce.openListener(listenerAddress(host), options);
      port = ((InetSocketAddress) listener.getLocalAddress()).getPort();
    } catch (IOException e) {
      throw new UncheckedIOException("rank " + spec.rank() + ": cannot open the ring listener on " + host + " (the "
          + "executor's advertised address, where peers dial it; set SPARK_LOCAL_IP on executors to an address of "
          + "this host): " + e.getMessage(), e);
    }
    String hostPart = host.contains(":") ? "[" + host + "]" : host;
    LOG.info("rank {} of {}: ring listener on {}:{}", spec.rank(), spec.worldSize(), hostPart, port);
    String[] published;
    try {
      published = barrier.allGather(hostPart + ":" + port + "|" + executorId + "|" + pid);
    } catch (RuntimeException e) {
      closeQuietly(listener);
      throw e;
    }
    List<Peer> peers = new ArrayList<>();
    for (String p : published) {
      peers.add(Peer.parse(p));
    }
    if (spec.ownJvm()) {
      try {
        requireOwnJvms(peers);
      } catch (RuntimeException e) {
        closeQuietly(listener);
        throw e;
      }
    }
    return RingAllReduce.connect(spec.rank(), peers.stream().map(Peer::address).toList(), listener, options);
  }

  /**
   * Where a rank's ring listener binds: the address its peers dial (the executor's advertised host), never the
   * wildcard, so the ring is not reachable through every interface of a shared machine.
   */
  static InetAddress listenerAddress(String host) throws UnknownHostException {
    return InetAddress.getByName(host);
  }

  /** Every rank in its own executor: two ranks sharing a JVM would share DJL's single gradient collector. */
  static void requireOwnJvms(List<Peer> peers) {
    Map<String, List<Integer>> ranksByJvm = new LinkedHashMap<>();
    for (int r = 0; r < peers.size(); r++) {
      Peer p = peers.get(r);
      ranksByJvm.computeIfAbsent(p.address().getHostString() + " pid " + p.pid() + " (executor " + p.executorId()
          + ")", k -> new ArrayList<>()).add(r);
    }
    List<String> shared = new ArrayList<>();
    ranksByJvm.forEach((jvm, ranks) -> {
      if (ranks.size() > 1) {
        shared.add("ranks " + ranks.toString().replaceAll("[\\[\\]]", "") + " share " + jvm);
      }
    });
    if (!shared.isEmpty()) {
      throw new NonRetryableTrainingException(String.join("; ", shared) + ": each rank needs an executor JVM of"
          + " its own (DJL allows one gradient collector per JVM). Size executors for one task each"
          + " (spark.task.cpus = spark.executor.cores) and run at least as many executors as workers");
    }
  }

  /** Distinct per run, driver attempt and Spark stage attempt. */
  static long session(WorkerSpec spec, int stageId, int stageAttempt) {
    String key = spec.runId() + "/" + spec.attempt() + "/" + stageId + "/" + stageAttempt;
    return UUID.nameUUIDFromBytes(key.getBytes(StandardCharsets.UTF_8)).getMostSignificantBits();
  }

  private static void closeQuietly(ServerSocketChannel listener) {
    try {
      listener.close();
    } catch (IOException ignored) {
      // Discarded anyway.
    }
  }
}
