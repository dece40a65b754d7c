package io.sparkdpo.dist;

import java.util.ArrayList;
import java.util.List;

/**
 * Which shards each rank reads. Shards are dealt round-robin (rank r gets shards r, r+W, r+2W, ...), and their
 * number must be a multiple of the worker count: every rank then reads the same number of shards and takes the
 * same number of pairs per step, so replicas take identical step counts, and a run with W workers sees exactly
 * the global batches of a run with one worker reading every shard (the equivalence the tests check).
 */
public final class ShardAssignment {
  private ShardAssignment() {}

  /** @return shards by rank, in the given shard order within each rank */
  public static List<List<String>> roundRobin(List<String> shards, int workers) {
    if (workers < 1) {
      throw new IllegalArgumentException("workers must be >= 1, got " + workers);
    }
    if (shards.isEmpty() || shards.size() % workers != 0) {
      throw new IllegalArgumentException(shards.size() + " shards cannot be split evenly over " + workers
          + " workers: write a multiple of " + workers + " shards (prepare.num_shards; 0 writes one per worker)");
    }
    List<List<String>> byRank = new ArrayList<>();
    for (int r = 0; r < workers; r++) {
      List<String> mine = new ArrayList<>();
      for (int i = r; i < shards.size(); i += workers) {
        mine.add(shards.get(i));
      }
      byRank.add(List.copyOf(mine));
    }
    return List.copyOf(byRank);
  }
}
