package io.sparkdpo.inference;

import org.apache.spark.Partitioner;

/**
 * Routes a row keyed {@code shard << 40 | row} to partition {@code shard}: one partition per shard, and with
 * {@code repartitionAndSortWithinPartitions} each partition sorted by row number, i.e. in the shard's own order.
 */
final class ShardPartitioner extends Partitioner {
  static final int ROW_BITS = 40;
  static final long ROW_MASK = (1L << ROW_BITS) - 1;
  private final int shards;

  ShardPartitioner(int shards) {
    this.shards = shards;
  }

  static long key(int shard, long row) {
    if (row < 0 || row > ROW_MASK) {
      throw new IllegalArgumentException("row " + row + " of shard " + shard + " is out of range");
    }
    return ((long) shard << ROW_BITS) | row;
  }

  @Override
  public int numPartitions() {
    return shards;
  }

  @Override
  public int getPartition(Object key) {
    return (int) ((Long) key >>> ROW_BITS);
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof ShardPartitioner p && p.shards == shards;
  }

  @Override
  public int hashCode() {
    return shards;
  }
}
