package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Bus bandwidth of the ring all-reduce between separate JVMs on 127.0.0.1, against a plain
 * one-connection loopback copy of the same bytes measured in the same run. Not a timed test: it
 * prints a table (and writes it to target/benchmarks/allreduce.md) for docs/benchmarks.md.
 *
 * <p>Run: {@code mvn -B -Pbench test -Dtest=RingAllReduceBenchmark}
 */
@Tag("bench")
class RingAllReduceBenchmark {

  private static final int WARMUP = 2;
  private static final int ROUNDS = 5;
  private static final List<String> JVM_OPTIONS = List.of("-Xms256m", "-Xmx1g");
  private static final long TIMEOUT_SECONDS = 600;
  /** Chunk sizes to compare; {@code -Dbench.chunks=65536,262144} overrides. */
  private static final int[] CHUNKS = java.util.Arrays.stream(
      System.getProperty("bench.chunks", String.valueOf(RingOptions.DEFAULT_CHUNK_BYTES))
          .split(",")).mapToInt(Integer::parseInt).toArray();

  @Test
  void busBandwidthOfTheRingAgainstAPlainLoopbackCopy() throws Exception {
    StringBuilder report = new StringBuilder();
    report.append("load average at start: ").append(loadAverage()).append('\n');
    report.append("| floats | MB | W | chunk | ring median s | algbw GB/s | busbw GB/s"
        + " | loopback copy GB/s | busbw / copy | same, best rounds |\n"
        + "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int floats : new int[] {10_000_000, 30_000_000}) {
      long bytes = 4L * floats;
      // The copy runs before and after the rings of this size; its median covers both.
      List<Long> copyNanos = new ArrayList<>(loopbackCopy(bytes));
      List<long[]> rings = new ArrayList<>();
      for (int world : new int[] {2, 4}) {
        for (int chunk : CHUNKS) {
          List<Long> nanos = ring(world, floats, chunk);
        rings.add(new long[] {world, chunk, median(nanos), Collections.min(nanos)});
        }
      }
      copyNanos.addAll(loopbackCopy(bytes));
      double copyBandwidth = bytes / (median(copyNanos) / 1e9);
      double bestCopyBandwidth = bytes / (Collections.min(copyNanos) / 1e9);
      for (long[] r : rings) {
        int world = (int) r[0];
        double seconds = r[2] / 1e9;
        double busFactor = 2.0 * (world - 1) / world;
        double busBandwidth = busFactor * bytes / seconds;
        double bestBusBandwidth = busFactor * bytes / (r[3] / 1e9);
        report.append(String.format(Locale.ROOT,
            "| %,d | %.0f | %d | %d KiB | %.3f | %.2f | %.2f | %.2f | %.2f | %.2f |%n",
            floats, bytes / 1e6, world, r[1] >> 10, seconds, bytes / seconds / 1e9,
            busBandwidth / 1e9, copyBandwidth / 1e9, busBandwidth / copyBandwidth,
            bestBusBandwidth / bestCopyBandwidth));
      }
    }
    report.append("load average at end: ").append(loadAverage()).append('\n');
    System.out.println(report);
    Path out = Path.of(System.getProperty("project.build.directory", "target"), "benchmarks",
        "allreduce.md");
    Files.createDirectories(out.getParent());
    Files.writeString(out, report);
  }

  /**
   * W JVMs join a ring; each round every rank checks the exact mean and bitwise agreement (the
   * process fails otherwise) and rank 0 prints the slowest rank's all-reduce time.
   */
  private static List<Long> ring(int world, int floats, int chunkBytes) throws Exception {
    List<ChildJvm> ranks = new ArrayList<>();
    try {
      for (int r = 0; r < world; r++) {
        ranks.add(ChildJvm.start(RingPeerProcess.class, JVM_OPTIONS, "bench",
            String.valueOf(floats), String.valueOf(WARMUP), String.valueOf(ROUNDS),
            String.valueOf(chunkBytes)));
      }
      StringBuilder plan = new StringBuilder();
      for (ChildJvm rank : ranks) {
        plan.append(" 127.0.0.1:").append(rank.awaitLine("listening", TIMEOUT_SECONDS));
      }
      for (int r = 0; r < world; r++) {
        ranks.get(r).send(r + plan.toString());
      }
      List<Long> nanos = new ArrayList<>();
      for (int i = 0; i < ROUNDS; i++) {
        nanos.add(Long.parseLong(ranks.get(0).awaitLine("result", TIMEOUT_SECONDS)));
      }
      for (ChildJvm rank : ranks) {
        rank.awaitLine("done", TIMEOUT_SECONDS);
      }
      return nanos;
    } finally {
      for (ChildJvm rank : ranks) {
        rank.close();
      }
    }
  }

  /** One JVM sends {@code bytes} to another over one loopback connection, WARMUP + ROUNDS times. */
  private static List<Long> loopbackCopy(long bytes) throws Exception {
    int rounds = WARMUP + ROUNDS;
    try (ChildJvm receiver = ChildJvm.start(LoopbackCopyProcess.class, JVM_OPTIONS, "receive",
        String.valueOf(bytes), String.valueOf(rounds))) {
      String port = receiver.awaitLine("listening", TIMEOUT_SECONDS);
      try (ChildJvm sender = ChildJvm.start(LoopbackCopyProcess.class, JVM_OPTIONS, "send", port,
          String.valueOf(bytes), String.valueOf(rounds))) {
        List<Long> nanos = new ArrayList<>();
        for (int i = 0; i < rounds; i++) {
          long t = Long.parseLong(sender.awaitLine("result", TIMEOUT_SECONDS));
          if (i >= WARMUP) {
            nanos.add(t);
          }
        }
        sender.awaitLine("done", TIMEOUT_SECONDS);
        receiver.awaitLine("done", TIMEOUT_SECONDS);
        assertEquals(ROUNDS, nanos.size());
        return nanos;
      }
    }
  }

  private static long median(List<Long> values) {
    List<Long> sorted = new ArrayList<>(values);
    Collections.sort(sorted);
    return sorted.get(sorted.size() / 2);
  }

  private static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).trim();
    } catch (Exception e) {
      return "unknown";
    }
  }
}
