package io.sparkdpo.inference;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Cuts preference pairs into forward-pass batches by length: pairs sorted by sequence length (prompt + the longer
 * response), then grown while the padded batch, chosen and rejected of every pair at the longest length, stays
 * within a token budget. Similar lengths together waste little on padding; a pair longer than the budget runs alone.
 */
final class LengthBatches {
  private LengthBatches() {}

  /**
   * @param sequenceLengths per pair, prompt + max(chosen, rejected)
   * @return batches of pair indices, shortest pairs first; every index exactly once
   */
  static List<int[]> plan(int[] sequenceLengths, int batchTokens) {
    Integer[] order = new Integer[sequenceLengths.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, Comparator.comparingInt((Integer i) -> sequenceLengths[i]).thenComparingInt(i -> i));
    List<int[]> batches = new ArrayList<>();
    List<Integer> current = new ArrayList<>();
    int longest = 0;
    for (int i : order) {
      int len = Math.max(longest, sequenceLengths[i]);
      // Two sequences per pair (chosen and rejected), all padded to the batch's longest.
      if (!current.isEmpty() && 2L * (current.size() + 1) * len > batchTokens) {
        batches.add(current.stream().mapToInt(Integer::intValue).toArray());
        current.clear();
        len = sequenceLengths[i];
      }
      current.add(i);
      longest = len;
    }
    if (!current.isEmpty()) {
      batches.add(current.stream().mapToInt(Integer::intValue).toArray());
    }
    return batches;
  }
}
