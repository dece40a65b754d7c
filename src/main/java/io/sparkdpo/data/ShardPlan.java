package io.sparkdpo.data;

import java.io.Serializable;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Deals kept rows to shards so that every shard (every training worker) gets the same amount of work. Within a
 * split, rows are ordered by token count, largest first (ties: input order), and dealt in a snake:
 * shard 0, 1, ..., S-1, S-1, ..., 1, 0, 0, 1, ... Shards then differ by at most one row and by less than one
 * row's tokens.
 *
 * <p>The order is fixed without sorting the data: from per-partition counts of (split, tokens) the driver
 * computes where each partition's run of equal-token rows starts in the global order ({@link #build}), and each
 * partition numbers its own rows from there.
 */
public final class ShardPlan implements Serializable {
  private final int shards;
  private final Map<Long, Long> starts;

  private ShardPlan(int shards, Map<Long, Long> starts) {
    this.shards = shards;
    this.starts = starts;
  }

  /** Rows of one partition with a given split and token count. */
  public record Count(int partition, boolean eval, int tokens, long rows) implements Serializable {}

  public static ShardPlan build(List<Count> counts, int shards) {
    if (shards < 1) {
      throw new IllegalArgumentException("shards must be >= 1, got " + shards);
    }
    // split -> tokens (descending) -> partition -> rows
    Map<Boolean, TreeMap<Integer, TreeMap<Integer, Long>>> bySplit = new HashMap<>();
    for (Count c : counts) {
      bySplit.computeIfAbsent(c.eval(), e -> new TreeMap<>((a, b) -> Integer.compare(b, a)))
          .computeIfAbsent(c.tokens(), t -> new TreeMap<>())
          .merge(c.partition(), c.rows(), Long::sum);
    }
    Map<Long, Long> starts = new HashMap<>();
    bySplit.forEach((eval, byTokens) -> {
      long next = 0;
      for (var t : byTokens.entrySet()) {
        for (var p : t.getValue().entrySet()) {
          starts.put(key(eval, p.getKey(), t.getKey()), next);
          next += p.getValue();
        }
      }
    });
    return new ShardPlan(shards, starts);
  }

  public int shards() {
    return shards;
  }

  /** Global position (within its split) of the first row of this partition with this token count. */
  public long firstIndex(boolean eval, int partition, int tokens) {
    Long s = starts.get(key(eval, partition, tokens));
    if (s == null) {
      throw new IllegalStateException("no plan for partition " + partition + " tokens " + tokens);
    }
    return s;
  }

  /** The snake: position i goes to shard i mod S, walking back on odd rounds. */
  public static int shardOf(long index, int shards) {
    long round = index / shards;
    int pos = (int) (index % shards);
    return round % 2 == 0 ? pos : shards - 1 - pos;
  }

  private static long key(boolean eval, int partition, int tokens) {
    return ((long) partition << 33) | ((eval ? 1L : 0L) << 32) | (tokens & 0xffffffffL);
  }
}
