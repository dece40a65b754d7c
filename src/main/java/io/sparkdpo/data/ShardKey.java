package io.sparkdpo.data;

import java.io.Serializable;
import java.util.Comparator;
import org.apache.spark.Partitioner;

/**
 * Where a kept row goes: its split and shard (the partition), and its place inside the shard, grouped by
 * sequence length (then pair id) so consecutive rows make tight batches.
 */
record ShardKey(boolean eval, int shard, int sequenceLength, String pairId) implements Serializable {
  static final Comparator<ShardKey> ORDER = new Order();

  private static final class Order implements Comparator<ShardKey>, Serializable {
    @Override
    public int compare(ShardKey a, ShardKey b) {
      int c = Integer.compare(a.sequenceLength, b.sequenceLength);
      return c != 0 ? c : a.pairId.compareTo(b.pairId);
    }
  }

  /** Partitions 0..S-1 are the train shards, S..2S-1 the eval shards. */
  static final class ByShard extends Partitioner {
    private final int shards;

    ByShard(int shards) {
      this.shards = shards;
    }

    @Override
    public int numPartitions() {
      return 2 * shards;
    }

    @Override
    public int getPartition(Object key) {
      ShardKey k = (ShardKey) key;
      return (k.eval ? shards : 0) + k.shard;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof ByShard b && b.shards == shards;
    }

    @Override
    public int hashCode() {
      return shards;
    }
  }
}
