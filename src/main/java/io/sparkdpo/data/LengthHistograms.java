package io.sparkdpo.data;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Accumulates the length histograms of prompt, chosen, rejected and sequence (prompt + longer response). */
final class LengthHistograms implements Serializable {
  static final String[] NAMES = {"prompt_len", "chosen_len", "rejected_len", "sequence_len"};

  private final int[] bounds;
  private final long[][] counts;
  private final int[] max = new int[NAMES.length];
  private final long[] total = new long[NAMES.length];

  /** Buckets up to the first power of two at or above maxLength (lengths never exceed maxLength). */
  LengthHistograms(int maxLength) {
    List<Integer> b = new ArrayList<>();
    for (int x = 8; ; x *= 2) {
      b.add(x);
      if (x >= maxLength) {
        break;
      }
    }
    bounds = b.stream().mapToInt(Integer::intValue).toArray();
    counts = new long[NAMES.length][bounds.length + 1]; // one overflow bucket, for safety
  }

  void add(PreparedRow r) {
    add(0, r.promptIds().length);
    add(1, r.chosenIds().length);
    add(2, r.rejectedIds().length);
    add(3, r.sequenceLength());
  }

  private void add(int which, int len) {
    int i = Arrays.binarySearch(bounds, len);
    counts[which][i >= 0 ? i : -i - 1]++;
    max[which] = Math.max(max[which], len);
    total[which] += len;
  }

  LengthHistograms merge(LengthHistograms o) {
    for (int w = 0; w < NAMES.length; w++) {
      for (int i = 0; i < counts[w].length; i++) {
        counts[w][i] += o.counts[w][i];
      }
      max[w] = Math.max(max[w], o.max[w]);
      total[w] += o.total[w];
    }
    return this;
  }

  Map<String, LengthHistogram> toMap() {
    Map<String, LengthHistogram> out = new TreeMap<>();
    List<Integer> upper = Arrays.stream(bounds).boxed().toList();
    for (int w = 0; w < NAMES.length; w++) {
      long overflow = counts[w][bounds.length];
      if (overflow != 0) {
        throw new IllegalStateException(NAMES[w] + " exceeds max_length in " + overflow + " rows");
      }
      out.put(NAMES[w], new LengthHistogram(upper,
          Arrays.stream(counts[w], 0, bounds.length).boxed().toList(), max[w], total[w]));
    }
    return out;
  }
}
