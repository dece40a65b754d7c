package io.sparkdpo.distributed;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What the per-chunk CRC32C costs: the checksum's own speed on one chunk, and the time of a W=2 in-process ring
 * all-reduce of 10M floats (40 MB, both ranks in this JVM over 127.0.0.1) in wall time and in the ranks' thread CPU
 * time (steadier on a loaded machine), to compare with the same bench on a tree without checksums. Not a timed test:
 * it prints figures for docs/distributed.md.
 *
 * <p>Run: {@code mvn -B -o -Pbench test -Dtest=RingChecksumCostBench}
 */
@Tag("bench")
class RingChecksumCostBench {

  private static final int FLOATS = 10_000_000;
  private static final int WARMUP = 3;
  private static final int ROUNDS = 9;

  @Test
  void checksumSpeedAndAllReduceTime() throws Exception {
    ByteBuffer chunk = ByteBuffer.allocateDirect(RingOptions.DEFAULT_CHUNK_BYTES);
    for (int i = 0; i < chunk.capacity(); i++) {
      chunk.put(i, (byte) (i * 31));
    }
    CRC32C crc = new CRC32C();
    List<Long> crcNanos = new ArrayList<>();
    for (int round = 0; round < 20; round++) {
      long start = System.nanoTime();
      for (int i = 0; i < 256; i++) {
        crc.update(chunk.duplicate());
      }
      crcNanos.add(System.nanoTime() - start);
    }
    double crcGbPerS = 256.0 * chunk.capacity() / median(crcNanos);
    RingOptions options = RingOptions.defaults().withIoTimeout(Duration.ofSeconds(60))
        .withConnectTimeout(Duration.ofSeconds(30));
    List<Long> ringNanos = new ArrayList<>();
    List<Long> cpuNanos = Collections.synchronizedList(new ArrayList<>());
    try (InProcessRing ring = InProcessRing.connect(2, options)) {
      List<List<Long>> perRank = ring.onEveryRank(g -> {
        FloatBuffer data = RingAllReduceTest.direct(new float[FLOATS]);
        List<Long> times = new ArrayList<>();
        var threads = ManagementFactory.getThreadMXBean();
        for (int round = 0; round < WARMUP + ROUNDS; round++) {
          g.barrier();
          long cpu = threads.getCurrentThreadCpuTime();
          long start = System.nanoTime();
          g.allReduceMean(data);
          if (round >= WARMUP) {
            times.add(System.nanoTime() - start);
            cpuNanos.add(threads.getCurrentThreadCpuTime() - cpu);
          }
        }
        return times;
      });
      for (int i = 0; i < ROUNDS; i++) {
        ringNanos.add(Math.max(perRank.get(0).get(i), perRank.get(1).get(i)));
      }
    }
    System.out.printf(Locale.ROOT, "CRC32C over a 1 MiB direct chunk: %.1f GB/s (crc32c %x)%n", crcGbPerS,
        crc.getValue());
    System.out.printf(Locale.ROOT, "W=2 in-process allReduceMean of %d floats: median %.1f ms, best %.1f ms,"
        + " CPU per rank median %.1f ms, best %.1f ms, load average %s%n", FLOATS, median(ringNanos) / 1e6,
        Collections.min(ringNanos) / 1e6, median(cpuNanos) / 1e6, Collections.min(cpuNanos) / 1e6,
        java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).trim());
  }

  private static double median(List<Long> values) {
    List<Long> sorted = new ArrayList<>(values);
    Collections.sort(sorted);
    return sorted.get(sorted.size() / 2);
  }
}
