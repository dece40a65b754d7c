package io.sparkdpo.distributed;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Compares every rank's parameter checksum; one all-gather of a long per rank. */
final class ReplicaCheck {
  private ReplicaCheck() {}

  /**
   * Returns the common checksum, or throws {@link ReplicaDivergenceException} on every rank (they all see the
   * same gathered values) naming the step and which ranks hold which checksum.
   */
  static long verify(AllReduce group, long step, long checksum) {
    long[] all = group.allGatherLong(checksum);
    Map<Long, List<Integer>> ranksByChecksum = new LinkedHashMap<>();
    for (int r = 0; r < all.length; r++) {
      ranksByChecksum.computeIfAbsent(all[r], k -> new ArrayList<>()).add(r);
    }
    if (ranksByChecksum.size() == 1) {
      return checksum;
    }
    List<String> groups = new ArrayList<>();
    ranksByChecksum.forEach((sum, ranks) -> groups.add((ranks.size() == 1 ? "rank " : "ranks ")
        + ranks.toString().replaceAll("[\\[\\]]", "") + " hold " + String.format("%016x", sum)));
    throw new ReplicaDivergenceException("replicas diverged after step " + step + ": " + String.join("; ", groups)
        + ". Replicas must stay bitwise identical (same start, same all-reduced gradients, same update); this is a"
        + " bug, so the run stops without a retry");
  }
}
