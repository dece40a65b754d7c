package io.sparkdpo.data;

import io.sparkdpo.io.Storage;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.util.SerializableConfiguration;
import scala.Tuple2;

/**
 * The Spark part of prepare: raw rows to outcomes (parsed, rendered, tokenized in batches; kept once in memory),
 * duplicates settled by shuffling only pair ids, per-partition counts that fix the shard plan, then one shuffle
 * that places kept rows in their shards (sorted by length inside) and one that orders the quarantine by file
 * and row. Every task writes its file under {@code tmp} with its attempt id; the driver publishes the winners.
 * Closures only capture serializable locals and broadcasts, never this object (it holds the session).
 */
final class PreparePipeline {
  private static final int BATCH_ROWS = 256;
  private static final int MAX_QUARANTINE_FILES = 16;

  private final SparkSession session;
  private final PrepareSpec spec;
  private final int shards;
  private final int maxLength;
  private final String tmp;

  PreparePipeline(SparkSession session, PrepareSpec spec, int shards, int maxLength, String tmp) {
    this.session = session;
    this.spec = spec;
    this.shards = shards;
    this.maxLength = maxLength;
    this.tmp = tmp;
  }

  record Outputs(List<PartitionStats> stats, List<ShardOutput> shards, List<QuarantineOutput> quarantine) {}

  Outputs run(JavaRDD<RawRecord> raw, int inputFiles) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(session.sparkContext());
    Broadcast<PrepareSpec> bspec = jsc.broadcast(spec);
    JavaRDD<RowOutcome> outcomes = raw
        .mapPartitions(it -> new PreparedBatches(it, new RowPreparer(bspec.value()), BATCH_ROWS))
        .persist(StorageLevel.MEMORY_AND_DISK());
    try {
      Broadcast<Map<String, Duplicates>> dupes = jsc.broadcast(duplicates(outcomes));
      JavaRDD<RowOutcome> settled = outcomes.map(o -> settle(o, dupes.value()));
      List<PartitionStats> stats = settled.mapPartitionsWithIndex(PreparePipeline::stats, true).collect();
      ShardPlan plan = ShardPlan.build(stats.stream().flatMap(p -> p.counts().stream()).toList(), shards);
      Broadcast<SerializableConfiguration> conf = HadoopConfBroadcast.of(session.sparkContext());
      // One schema for the folder: the margin column in every shard when any kept row has a margin.
      boolean margin = stats.stream().anyMatch(p -> p.margins() > 0);
      List<ShardOutput> written = writeShards(settled, jsc.broadcast(plan), conf, margin);
      List<QuarantineOutput> quarantined = writeQuarantine(settled, conf, Math.min(inputFiles, MAX_QUARANTINE_FILES));
      return new Outputs(stats, written, quarantined);
    } finally {
      outcomes.unpersist(false);
    }
  }

  private List<ShardOutput> writeShards(JavaRDD<RowOutcome> settled, Broadcast<ShardPlan> plan,
      Broadcast<SerializableConfiguration> conf, boolean margin) {
    int s = shards;
    int max = maxLength;
    String dir = tmp;
    JavaPairRDD<ShardKey, PreparedRow> keyed = settled
        .mapPartitionsWithIndex((p, it) -> assign(p, it, plan.value()), true)
        .mapToPair(t -> t);
    return keyed.repartitionAndSortWithinPartitions(new ShardKey.ByShard(s), ShardKey.ORDER)
        .mapPartitionsWithIndex((p, it) -> {
          boolean eval = p >= s;
          String file = Storage.join(dir, String.format("%s/shard-%05d.parquet.attempt-%d",
              eval ? PreparedManifest.EVAL : PreparedManifest.TRAIN, p % s,
              TaskContext.get().taskAttemptId()));
          PreparedShardWriter w = new PreparedShardWriter(file, conf.value().value(), max, margin);
          try (w) {
            while (it.hasNext()) {
              w.write(it.next()._2());
            }
          }
          return List.of(new ShardOutput(eval, p % s, file, w.written())).iterator();
        }, true).collect();
  }

  private List<QuarantineOutput> writeQuarantine(JavaRDD<RowOutcome> settled,
      Broadcast<SerializableConfiguration> conf, int partitions) {
    String dir = tmp;
    return settled.filter(o -> o instanceof QuarantineRecord)
        .mapToPair(o -> new Tuple2<>(SourceKey.of(o), (QuarantineRecord) o))
        .repartitionAndSortWithinPartitions(new SourceKey.ByFile(partitions), SourceKey.ORDER)
        .mapPartitionsWithIndex((p, it) -> {
          String file = Storage.join(dir, String.format("quarantine/part-%05d.jsonl.attempt-%d", p,
              TaskContext.get().taskAttemptId()));
          QuarantineWriter w = new QuarantineWriter(file, conf.value().value());
          try (w) {
            while (it.hasNext()) {
              w.write(it.next()._2());
            }
          }
          return List.of(new QuarantineOutput(p, w.rows() == 0 ? null : file, w.rows(),
              new TreeMap<>(w.reasons()))).iterator();
        }, true).collect();
  }

  /** The first occurrence of a pair id that occurs more than once, and how often. */
  record Duplicates(SourceKey first, long count) implements Serializable {
    Duplicates merge(Duplicates o) {
      return new Duplicates(first.first(o.first), count + o.count);
    }
  }

  private static Map<String, Duplicates> duplicates(JavaRDD<RowOutcome> outcomes) {
    return new HashMap<>(outcomes.filter(o -> o instanceof PreparedRow)
        .mapToPair(o -> new Tuple2<>(((PreparedRow) o).pairId(), new Duplicates(SourceKey.of(o), 1)))
        .reduceByKey(Duplicates::merge)
        .filter(t -> t._2().count() > 1)
        .collectAsMap());
  }

  /** A kept row whose pair already appeared earlier in the input becomes a duplicate_pair quarantine record. */
  private static RowOutcome settle(RowOutcome o, Map<String, Duplicates> dupes) {
    if (o instanceof PreparedRow r) {
      Duplicates d = dupes.get(r.pairId());
      if (d != null && !d.first().equals(SourceKey.of(r))) {
        return QuarantineRecord.of(r, QuarantineReason.DUPLICATE_PAIR, "the same prompt, chosen and rejected as "
            + d.first().file() + " row " + d.first().row() + " (pair " + r.pairId() + ")");
      }
    }
    return o;
  }

  /** @param margins kept rows that carry a reward margin */
  record PartitionStats(int partition, long read, long kept, long truncated, Map<String, Long> reasons,
      List<ShardPlan.Count> counts, long margins) implements Serializable {}

  private static Iterator<PartitionStats> stats(int partition, Iterator<RowOutcome> it) {
    long read = 0;
    long kept = 0;
    long truncated = 0;
    long margins = 0;
    Map<String, Long> reasons = new TreeMap<>();
    Map<Long, Long> byKey = new HashMap<>();
    while (it.hasNext()) {
      RowOutcome o = it.next();
      read++;
      if (o instanceof PreparedRow r) {
        kept++;
        truncated += r.truncated() ? 1 : 0;
        margins += r.margin() != null ? 1 : 0;
        byKey.merge(((r.eval() ? 1L : 0L) << 32) | r.tokens(), 1L, Long::sum);
      } else {
        reasons.merge(((QuarantineRecord) o).reason(), 1L, Long::sum);
      }
    }
    List<ShardPlan.Count> counts = new ArrayList<>();
    byKey.forEach((k, n) -> counts.add(new ShardPlan.Count(partition, (k >>> 32) == 1, (int) (long) k, n)));
    return List.of(new PartitionStats(partition, read, kept, truncated, reasons, counts, margins)).iterator();
  }

  /** Numbers a partition's kept rows in the plan's global order and deals them to shards (lazily). */
  private static Iterator<Tuple2<ShardKey, PreparedRow>> assign(int partition, Iterator<RowOutcome> it,
      ShardPlan plan) {
    Map<Long, Long> seen = new HashMap<>();
    return new Lookahead<>() {
      @Override
      protected Tuple2<ShardKey, PreparedRow> advance() {
        while (it.hasNext()) {
          if (it.next() instanceof PreparedRow r) {
            long k = ((r.eval() ? 1L : 0L) << 32) | r.tokens();
            long index = plan.firstIndex(r.eval(), partition, r.tokens()) + seen.merge(k, 1L, Long::sum) - 1;
            int shard = ShardPlan.shardOf(index, plan.shards());
            return new Tuple2<>(new ShardKey(r.eval(), shard, r.sequenceLength(), r.pairId()), r.withoutRaw());
          }
        }
        return null;
      }
    };
  }

  record ShardOutput(boolean eval, int shard, String file, PreparedShardWriter.Written written)
      implements Serializable {}

  record QuarantineOutput(int partition, String file, long rows, Map<String, Long> reasons) implements Serializable {}
}
