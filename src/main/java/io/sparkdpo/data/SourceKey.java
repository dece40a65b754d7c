package io.sparkdpo.data;

import java.io.Serializable;
import java.util.Comparator;
import org.apache.spark.Partitioner;

/** An input row's position (file, then row): orders quarantine files and picks the first of duplicate pairs. */
record SourceKey(String file, long row) implements Serializable {
  static final Comparator<SourceKey> ORDER = new Order();

  private static final class Order implements Comparator<SourceKey>, Serializable {
    @Override
    public int compare(SourceKey a, SourceKey b) {
      int c = a.file.compareTo(b.file);
      return c != 0 ? c : Long.compare(a.row, b.row);
    }
  }

  static SourceKey of(RowOutcome o) {
    return new SourceKey(o.sourceFile(), o.sourceRow());
  }

  SourceKey first(SourceKey other) {
    return ORDER.compare(this, other) <= 0 ? this : other;
  }

  /** All rows of a file in one partition, so each quarantine file lists whole input files in row order. */
  static final class ByFile extends Partitioner {
    private final int partitions;

    ByFile(int partitions) {
      this.partitions = partitions;
    }

    @Override
    public int numPartitions() {
      return partitions;
    }

    @Override
    public int getPartition(Object key) {
      return Math.floorMod(((SourceKey) key).file.hashCode(), partitions);
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof ByFile b && b.partitions == partitions;
    }

    @Override
    public int hashCode() {
      return partitions;
    }
  }
}
