package io.sparkdpo.inference;

import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.PreparedShardWriter;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.util.SerializableConfiguration;
import scala.Tuple2;

/**
 * Writes one referenced shard per partition: partition i holds exactly the rows of shard i, sorted by their row
 * number in the prepared shard ({@link ShardPartitioner}), so the file keeps the prepared shard's name and row order.
 * Columns are read by index from the scored rows ({@link Columns}).
 */
final class ShardWriter implements Function2<Integer, Iterator<Tuple2<Long, Row>>, Iterator<ShardWriter.Output>> {
  private final List<String> files; // per shard, the temporary file to write
  private final Columns columns;
  private final Broadcast<SerializableConfiguration> conf;

  /** Where each column of a scored row sits; {@code margin} -1 when the prepared shards have no margin column. */
  record Columns(int pairId, int sourceFile, int sourceRow, int promptText, int chosenText, int rejectedText,
      int promptIds, int chosenIds, int rejectedIds, int truncated, int chosenLogp, int rejectedLogp,
      int chosenTokens, int rejectedTokens, int margin) implements Serializable {}

  /** What one task wrote. */
  record Output(int shard, PreparedShardWriter.Written written, long responseTokens) implements Serializable {}

  ShardWriter(List<String> files, Columns columns, Broadcast<SerializableConfiguration> conf) {
    this.files = List.copyOf(files);
    this.columns = columns;
    this.conf = conf;
  }

  @Override
  public Iterator<Output> call(Integer shard, Iterator<Tuple2<Long, Row>> rows) {
    String file = files.get(shard);
    long responseTokens = 0;
    PreparedShardWriter writer = null;
    try {
      writer = PreparedShardWriter.referenced(file, conf.value().value(), columns.margin() >= 0);
      long expectedRow = 0;
      while (rows.hasNext()) {
        Tuple2<Long, Row> next = rows.next();
        long row = next._1() & ShardPartitioner.ROW_MASK;
        if (row != expectedRow) {
          throw new IllegalStateException(file + ": expected row " + expectedRow + " of the prepared shard next, got "
              + row + " (rows lost or duplicated between read and write)");
        }
        expectedRow++;
        PreparedPair p = pair(next._2());
        int chosenTokens = next._2().getInt(columns.chosenTokens());
        int rejectedTokens = next._2().getInt(columns.rejectedTokens());
        if (chosenTokens != p.chosenIds().length || rejectedTokens != p.rejectedIds().length) {
          throw new IllegalStateException("pair " + p.pairId() + ": scored " + chosenTokens + "/" + rejectedTokens
              + " response tokens, the pair has " + p.chosenIds().length + "/" + p.rejectedIds().length);
        }
        writer.write(p, chosenTokens, rejectedTokens);
        responseTokens += chosenTokens + rejectedTokens;
      }
      writer.close();
      return List.of(new Output(shard, writer.written(), responseTokens)).iterator();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  private PreparedPair pair(Row r) {
    Columns c = columns;
    return new PreparedPair(r.getString(c.pairId()), r.getString(c.sourceFile()), r.getLong(c.sourceRow()),
        r.getString(c.promptText()), r.getString(c.chosenText()), r.getString(c.rejectedText()),
        ints(r, c.promptIds()), ints(r, c.chosenIds()), ints(r, c.rejectedIds()), -1, -1, -1,
        r.getBoolean(c.truncated()), r.getDouble(c.chosenLogp()), r.getDouble(c.rejectedLogp()),
        c.margin() < 0 ? null : r.getDouble(c.margin()));
  }

  private static int[] ints(Row r, int col) {
    List<Object> list = r.getList(col);
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ((Number) list.get(i)).intValue();
    }
    return out;
  }
}
