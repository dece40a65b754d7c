package io.sparkdpo.distributed;

import java.util.ArrayList;
import java.util.List;

/**
 * Which shards each rank reads, dealt round-robin (rank r gets shards r, r+W, r+2W, ...).
 *
 * <p>Training shards must come in a multiple of the worker count: every rank then reads the same number of
 * shards and takes the same number of pairs from each per step, so replicas take identical step counts, and a
 * run with W workers sees exactly the global batches of a run with one worker reading every shard (the
 * equivalence the tests check). Evaluation shards may come in any number: ranks report weighted means, and a
 * rank with none reports weight 0.
 *
 * @param train training shards by rank; its size is the world size
 * @param eval evaluation shards by rank (lists may be empty)
 */
public record ShardPlan(List<List<String>> train, List<List<String>> eval) {

  public ShardPlan {
    train = train.stream().map(List::copyOf).toList();
    eval = eval.stream().map(List::copyOf).toList();
    if (train.isEmpty() || eval.size() != train.size()) {
      throw new IllegalArgumentException("need training shards for at least one rank and eval shards for each ("
          + train.size() + " and " + eval.size() + " ranks)");
    }
  }

  /** Deals {@code trainShards} and {@code evalShards} over {@code workers} ranks. */
  public static ShardPlan of(List<String> trainShards, List<String> evalShards, int workers) {
    if (workers < 1) {
      throw new IllegalArgumentException("workers must be >= 1, got " + workers);
    }
    if (trainShards.isEmpty() || trainShards.size() % workers != 0) {
      throw new IllegalArgumentException(trainShards.size() + " training shards cannot be split evenly over "
          + workers + " workers: write a multiple of " + workers + " shards (prepare.num_shards; 0 writes one per"
          + " worker)");
    }
    return new ShardPlan(deal(trainShards, workers), deal(evalShards, workers));
  }

  public int workers() {
    return train.size();
  }

  private static List<List<String>> deal(List<String> shards, int workers) {
    List<List<String>> byRank = new ArrayList<>();
    for (int r = 0; r < workers; r++) {
      List<String> mine = new ArrayList<>();
      for (int i = r; i < shards.size(); i += workers) {
        mine.add(shards.get(i));
      }
      byRank.add(mine);
    }
    return byRank;
  }
}
