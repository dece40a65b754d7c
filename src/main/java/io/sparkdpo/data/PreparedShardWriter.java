package io.sparkdpo.data;

import java.io.Closeable;
import java.io.IOException;
import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetFileWriter;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;

/**
 * Writes one prepared shard with parquet-hadoop directly, so the file name is ours (no task UUIDs), the bytes are
 * reproducible, and an empty shard is still a valid file with the schema. Standard 3-level lists, readable by
 * Spark, pyarrow and {@link PreparedShardReader}. {@link #referenced} writes the reference stage's shards: the same
 * columns followed by the reference model's log-probs (under TRL's names, {@link ReferenceColumns}) and the response
 * tokens they sum over. A folder whose input rows carry TRL's {@code margin} gets a {@value #MARGIN} column in every
 * shard (0 for a row without one, which is what no margin computes); other folders' shards are byte for byte what
 * they were before the column existed.
 */
public final class PreparedShardWriter implements Closeable {
  private static final String PREPARED_COLUMNS = """
        required binary pair_id (STRING);
        required binary source_file (STRING);
        required int64 source_row;
        required binary prompt_text (STRING);
        required binary chosen_text (STRING);
        required binary rejected_text (STRING);
        required group prompt_ids (LIST) { repeated group list { required int32 element; } }
        required group chosen_ids (LIST) { repeated group list { required int32 element; } }
        required group rejected_ids (LIST) { repeated group list { required int32 element; } }
        required int32 prompt_len;
        required int32 chosen_len;
        required int32 rejected_len;
        required boolean truncated;
      """;
  private static final String REFERENCE_COLUMNS = "required double " + ReferenceColumns.CHOSEN_LOGPS + ";\n"
      + "required double " + ReferenceColumns.REJECTED_LOGPS + ";\n"
      + "required int32 " + ReferenceColumns.CHOSEN_TOKENS + ";\n"
      + "required int32 " + ReferenceColumns.REJECTED_TOKENS + ";\n";
  /** The reward margin's column (TRL's name), present only in folders prepared from rows that have one. */
  public static final String MARGIN = TrlFormat.MARGIN;
  private static final String MARGIN_COLUMN = "required double " + MARGIN + ";\n";
  static final MessageType SCHEMA = MessageTypeParser.parseMessageType(
      "message prepared_pair {\n" + PREPARED_COLUMNS + "}");
  static final MessageType REFERENCED_SCHEMA = MessageTypeParser.parseMessageType(
      "message referenced_pair {\n" + PREPARED_COLUMNS + REFERENCE_COLUMNS + "}");
  static final MessageType MARGIN_SCHEMA = MessageTypeParser.parseMessageType(
      "message prepared_pair {\n" + PREPARED_COLUMNS + MARGIN_COLUMN + "}");
  static final MessageType REFERENCED_MARGIN_SCHEMA = MessageTypeParser.parseMessageType(
      "message referenced_pair {\n" + PREPARED_COLUMNS + MARGIN_COLUMN + REFERENCE_COLUMNS + "}");

  /** What was written: the manifest's per-shard entry, plus the shard's length histograms. */
  public record Written(long rows, long tokens, long stepTokens, String sha256, long bytes,
      LengthHistograms histograms) implements java.io.Serializable {}

  private final HashingOutputFile file;
  private final ParquetWriter<Group> writer;
  private final SimpleGroupFactory groups;
  private final LengthHistograms histograms;
  private final boolean margin;
  private long rows;
  private long tokens;
  private long stepTokens;

  PreparedShardWriter(String path, Configuration conf, int maxLength) throws IOException {
    this(path, conf, maxLength, false);
  }

  /** @param margin whether the shard has the {@value #MARGIN} column */
  PreparedShardWriter(String path, Configuration conf, int maxLength, boolean margin) throws IOException {
    this(path, conf, maxLength, margin ? MARGIN_SCHEMA : SCHEMA);
  }

  private PreparedShardWriter(String path, Configuration conf, int maxLength, MessageType schema) throws IOException {
    this.margin = schema.containsField(MARGIN);
    this.file = new HashingOutputFile(path, conf);
    this.histograms = new LengthHistograms(maxLength);
    this.groups = new SimpleGroupFactory(schema);
    this.writer = ExampleParquetWriter.builder(file)
        .withType(schema)
        .withConf(conf)
        .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
        .withCompressionCodec(CompressionCodecName.SNAPPY)
        .withDictionaryEncoding(false)
        .build();
  }

  /** A shard of the reference stage, written with {@link #write(PreparedPair, int, int)}; no histograms. */
  public static PreparedShardWriter referenced(String path, Configuration conf) throws IOException {
    return referenced(path, conf, false);
  }

  /** As {@link #referenced(String, Configuration)}, with the {@value #MARGIN} column when {@code margin}. */
  public static PreparedShardWriter referenced(String path, Configuration conf, boolean margin) throws IOException {
    return new PreparedShardWriter(path, conf, 1, margin ? REFERENCED_MARGIN_SCHEMA : REFERENCED_SCHEMA);
  }

  void write(PreparedRow r) throws IOException {
    writer.write(withMargin(prepared(r.pairId(), r.sourceFile(), r.sourceRow(), r.promptText(), r.chosenText(),
        r.rejectedText(), r.promptIds(), r.chosenIds(), r.rejectedIds(), r.truncated()), r.margin()));
    count(r.promptIds(), r.chosenIds(), r.rejectedIds());
    histograms.add(r);
  }

  /** A referenced row: the pair with its reference log-probs (both required) and the tokens each one sums. */
  public void write(PreparedPair p, int refChosenTokens, int refRejectedTokens) throws IOException {
    if (p.refChosenLogp() == null || p.refRejectedLogp() == null) {
      throw new IllegalArgumentException("pair " + p.pairId() + " has no reference log-probs to write");
    }
    Group g = withMargin(prepared(p.pairId(), p.sourceFile(), p.sourceRow(), p.promptText(), p.chosenText(),
        p.rejectedText(), p.promptIds(), p.chosenIds(), p.rejectedIds(), p.truncated()), p.margin())
        .append(ReferenceColumns.CHOSEN_LOGPS, p.refChosenLogp())
        .append(ReferenceColumns.REJECTED_LOGPS, p.refRejectedLogp())
        .append(ReferenceColumns.CHOSEN_TOKENS, refChosenTokens)
        .append(ReferenceColumns.REJECTED_TOKENS, refRejectedTokens);
    writer.write(g);
    count(p.promptIds(), p.chosenIds(), p.rejectedIds());
  }

  private Group prepared(String pairId, String sourceFile, long sourceRow, String promptText, String chosenText,
      String rejectedText, int[] promptIds, int[] chosenIds, int[] rejectedIds, boolean truncated) {
    Group g = groups.newGroup()
        .append("pair_id", pairId)
        .append("source_file", sourceFile)
        .append("source_row", sourceRow)
        .append("prompt_text", promptText)
        .append("chosen_text", chosenText)
        .append("rejected_text", rejectedText);
    list(g.addGroup("prompt_ids"), promptIds);
    list(g.addGroup("chosen_ids"), chosenIds);
    list(g.addGroup("rejected_ids"), rejectedIds);
    return g.append("prompt_len", promptIds.length)
        .append("chosen_len", chosenIds.length)
        .append("rejected_len", rejectedIds.length)
        .append("truncated", truncated);
  }

  /** Appends the margin when the shard has the column: a row without one gets 0, the loss without a margin. */
  private Group withMargin(Group g, Double value) {
    return margin ? g.append(MARGIN, value == null ? 0.0 : value) : g;
  }

  /** Manifest token counts: all ids stored, and what a DPO step processes (the prompt once with each response). */
  private void count(int[] prompt, int[] chosen, int[] rejected) {
    rows++;
    tokens += prompt.length + chosen.length + rejected.length;
    stepTokens += 2L * prompt.length + chosen.length + rejected.length;
  }

  private static void list(Group list, int[] ids) {
    for (int id : ids) {
      list.addGroup("list").append("element", id);
    }
  }

  @Override
  public void close() throws IOException {
    writer.close();
  }

  /** After {@link #close()}. */
  public Written written() {
    return new Written(rows, tokens, stepTokens, file.sha256(), file.bytes(), histograms);
  }
}
