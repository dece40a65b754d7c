package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * How far training has read one shard: the epoch, and how many pairs of that epoch's shuffled order are
 * consumed. The order itself is a function of {@code shuffleSeed} and the epoch, so this is all a resume needs.
 */
public record ShardCursor(
    @JsonProperty("shard") String shard,
    @JsonProperty("pairs") long pairs,
    @JsonProperty("shuffle_seed") long shuffleSeed,
    @JsonProperty("epoch") int epoch,
    @JsonProperty("consumed") long consumed) {

  public ShardCursor {
    if (pairs <= 0 || epoch < 0 || consumed < 0 || consumed > pairs) {
      throw new IllegalArgumentException("invalid cursor for " + shard + ": pairs " + pairs + ", epoch " + epoch
          + ", consumed " + consumed);
    }
  }

  /** The start of a shard of {@code pairs} pairs. */
  public static ShardCursor start(String shard, long pairs, long shuffleSeed) {
    return new ShardCursor(shard, pairs, shuffleSeed, 0, 0);
  }

  /** Pairs consumed since the start, over all epochs. */
  public long totalConsumed() {
    return epoch * pairs + consumed;
  }
}
