package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class ShardPlanTest {
  @Test
  void dealsInASnakeSoEveryShardGetsOneOfEachRound() {
    assertEquals(List.of(0, 1, 2, 2, 1, 0, 0, 1, 2, 2),
        IntStream.range(0, 10).mapToObj(i -> ShardPlan.shardOf(i, 3)).toList());
    assertEquals(List.of(0, 0, 0), IntStream.range(0, 3).mapToObj(i -> ShardPlan.shardOf(i, 1)).toList());
  }

  @Test
  void ordersBySplitThenTokensDescendingThenPartition() {
    ShardPlan plan = ShardPlan.build(List.of(
        new ShardPlan.Count(0, false, 10, 2),
        new ShardPlan.Count(1, false, 10, 3),
        new ShardPlan.Count(1, false, 50, 1),
        new ShardPlan.Count(0, true, 10, 4),
        new ShardPlan.Count(2, false, 20, 5)), 2);
    assertEquals(0, plan.firstIndex(false, 1, 50)); // the largest row comes first
    assertEquals(1, plan.firstIndex(false, 2, 20));
    assertEquals(6, plan.firstIndex(false, 0, 10)); // equal tokens: partition order
    assertEquals(8, plan.firstIndex(false, 1, 10));
    assertEquals(0, plan.firstIndex(true, 0, 10)); // eval is numbered on its own
  }

  @Test
  void snakeDealingOfSortedRowsBalancesTokensWithinOneRow() {
    int[] tokens = IntStream.range(0, 1000).map(i -> 1000 - i).toArray(); // already in descending order
    long[] perShard = new long[4];
    for (int i = 0; i < tokens.length; i++) {
      perShard[ShardPlan.shardOf(i, 4)] += tokens[i];
    }
    long max = java.util.Arrays.stream(perShard).max().orElseThrow();
    long min = java.util.Arrays.stream(perShard).min().orElseThrow();
    assertEquals(0, max - min); // 1000 rows = 125 full rounds there and back: exactly equal
  }
}
