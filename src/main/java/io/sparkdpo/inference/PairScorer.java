package io.sparkdpo.inference;

import io.sparkdpo.distributed.TaskDevice;
import io.sparkdpo.model.ModelConfig;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.util.SerializableConfiguration;

/**
 * The executor side of {@link ReferenceLogProbs}: for one partition, reads {@code sortWindow} rows at a time, scores
 * them with the JVM's cached model ({@link ExecutorModels}; loaded on first use, never for an empty partition) and
 * emits every input row, in input order, with four values appended: summed log-probs of chosen and rejected and
 * their token counts. The model is held for the task and released when it completes.
 */
final class PairScorer implements MapPartitionsFunction<Row, Row> {
  private final ModelSpec model;
  private final Broadcast<SerializableConfiguration> conf;
  private final int promptCol;
  private final int chosenCol;
  private final int rejectedCol;
  private final int idCol; // -1: rows are named by their position in the partition
  private final int batchTokens;
  private final int sortWindow;
  private final ExecutorStats stats; // null: not reported

  PairScorer(ModelSpec model, Broadcast<SerializableConfiguration> conf, int promptCol, int chosenCol,
      int rejectedCol, int idCol, int batchTokens, int sortWindow, ExecutorStats stats) {
    this.model = model;
    this.conf = conf;
    this.promptCol = promptCol;
    this.chosenCol = chosenCol;
    this.rejectedCol = rejectedCol;
    this.idCol = idCol;
    this.batchTokens = batchTokens;
    this.sortWindow = sortWindow;
    this.stats = stats;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    if (stats != null) {
      stats.taskRan();
    }
    return new Scored(input);
  }

  /** The lazily computed output of one partition. */
  private final class Scored implements Iterator<Row> {
    private final Iterator<Row> input;
    private ExecutorModels.Lease lease;
    private Iterator<Row> window = List.<Row>of().iterator();
    private long position; // rows read so far, to name rows without an id column

    Scored(Iterator<Row> input) {
      this.input = input;
    }

    @Override
    public boolean hasNext() {
      if (!window.hasNext() && input.hasNext()) {
        window = scoreWindow();
      }
      if (!window.hasNext() && lease != null) {
        lease.close();
      }
      return window.hasNext();
    }

    @Override
    public Row next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      return window.next();
    }

    private Iterator<Row> scoreWindow() {
      if (lease == null) {
        lease = ExecutorModels.acquire(model, TaskDevice.forCurrentTask(model.device()), conf.value().value());
        ExecutorModels.Lease held = lease;
        TaskContext task = TaskContext.get();
        if (task != null) {
          task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) ctx -> held.close());
        }
        if (stats != null) {
          stats.modelUsed(lease.loadedNow());
        }
      }
      ModelConfig config = lease.model().config();
      List<Row> rows = new ArrayList<>(sortWindow);
      List<int[]> prompts = new ArrayList<>(sortWindow);
      List<int[]> chosen = new ArrayList<>(sortWindow);
      List<int[]> rejected = new ArrayList<>(sortWindow);
      while (rows.size() < sortWindow && input.hasNext()) {
        Row row = input.next();
        String name = idCol >= 0 && !row.isNullAt(idCol) ? "pair " + row.get(idCol)
            : "row " + position + " of partition " + partition();
        position++;
        int[] p = ids(row, promptCol, name, config);
        int[] c = ids(row, chosenCol, name, config);
        int[] r = ids(row, rejectedCol, name, config);
        if (p.length == 0 || c.length == 0 || r.length == 0) {
          throw new IllegalArgumentException(name + ": " + field(row, p.length == 0 ? promptCol
              : c.length == 0 ? chosenCol : rejectedCol) + " is empty; reference log-probs need a prompt and both "
              + "responses");
        }
        int longest = p.length + Math.max(c.length, r.length);
        if (longest > config.maxPositionEmbeddings()) {
          throw new IllegalArgumentException(name + ": prompt + response is " + longest + " tokens, more than the "
              + "model's max_position_embeddings=" + config.maxPositionEmbeddings() + " (prepare with a smaller "
              + "prepare.max_length)");
        }
        rows.add(row);
        prompts.add(p);
        chosen.add(c);
        rejected.add(r);
      }
      PairScoring.Scores s = PairScoring.score(lease.model(), prompts, chosen, rejected, batchTokens);
      List<Row> out = new ArrayList<>(rows.size());
      for (int i = 0; i < rows.size(); i++) {
        Row row = rows.get(i);
        Object[] values = new Object[row.length() + 4];
        for (int f = 0; f < row.length(); f++) {
          values[f] = row.get(f);
        }
        values[row.length()] = s.chosen()[i];
        values[row.length() + 1] = s.rejected()[i];
        values[row.length() + 2] = s.chosenTokens()[i];
        values[row.length() + 3] = s.rejectedTokens()[i];
        out.add(RowFactory.create(values));
      }
      return out.iterator();
    }
  }

  private static int partition() {
    TaskContext task = TaskContext.get();
    return task == null ? -1 : task.partitionId();
  }

  private static String field(Row row, int col) {
    return row.schema() == null ? "column " + col : row.schema().apply(col).name();
  }

  /** A token id column as int[], every id inside the model's vocabulary. */
  private static int[] ids(Row row, int col, String name, ModelConfig config) {
    String field = field(row, col);
    if (row.isNullAt(col)) {
      throw new IllegalArgumentException(name + ": " + field + " is null");
    }
    List<Object> list = row.getList(col);
    int[] ids = new int[list.size()];
    for (int i = 0; i < ids.length; i++) {
      Object v = list.get(i);
      if (v == null) {
        throw new IllegalArgumentException(name + ": " + field + "[" + i + "] is null");
      }
      ids[i] = ((Number) v).intValue();
      if (ids[i] < 0 || ids[i] >= config.vocabSize()) {
        throw new IllegalArgumentException(name + ": " + field + "[" + i + "] = " + ids[i]
            + " is outside the model's vocabulary of " + config.vocabSize() + " (data prepared with another "
            + "tokenizer?)");
      }
    }
    return ids;
  }
}
