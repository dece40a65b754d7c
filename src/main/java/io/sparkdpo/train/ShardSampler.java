package io.sparkdpo.train;

/**
 * Reads a shard's pairs in a shuffled order that changes every epoch and continues across epoch ends, so every
 * step gets a full batch (replicas must take identical step counts). The order depends only on the shuffle
 * seed and the epoch, so a sampler rebuilt from a checkpoint's {@link ShardCursor} continues exactly where
 * the interrupted one stood.
 */
public final class ShardSampler {
  private final String shard;
  private final int pairs;
  private final long shuffleSeed;
  private int epoch;
  private int consumed;
  private int[] order;

  /** @param actualPairs the shard's pair count now; must equal the cursor's (else the data changed) */
  public ShardSampler(ShardCursor cursor, long actualPairs) {
    if (cursor.pairs() != actualPairs) {
      throw new IllegalArgumentException("the data cursor says shard " + cursor.shard() + " has " + cursor.pairs()
          + " pairs, but it has " + actualPairs + ": the data changed since the checkpoint was written");
    }
    this.shard = cursor.shard();
    this.pairs = Math.toIntExact(cursor.pairs());
    this.shuffleSeed = cursor.shuffleSeed();
    this.epoch = cursor.epoch();
    this.consumed = Math.toIntExact(cursor.consumed());
    this.order = permutation(pairs, shuffleSeed, epoch);
  }

  /** The next {@code count} row indices of the shard, moving into the next epoch when this one runs out. */
  public int[] next(int count) {
    int[] out = new int[count];
    for (int i = 0; i < count; i++) {
      if (consumed == pairs) {
        epoch++;
        consumed = 0;
        order = permutation(pairs, shuffleSeed, epoch);
      }
      out[i] = order[consumed++];
    }
    return out;
  }

  public ShardCursor cursor() {
    return new ShardCursor(shard, pairs, shuffleSeed, epoch, consumed);
  }

  /** The order of epoch {@code epoch}: a seeded shuffle of 0..pairs-1. */
  static int[] permutation(int pairs, long shuffleSeed, int epoch) {
    int[] order = new int[pairs];
    for (int i = 0; i < pairs; i++) {
      order[i] = i;
    }
    new SeededRng(SeededRng.derive(shuffleSeed, epoch)).shuffle(order);
    return order;
  }
}
