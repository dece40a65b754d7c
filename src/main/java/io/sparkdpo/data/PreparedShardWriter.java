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
 * Spark, pyarrow and {@link PreparedShardReader}.
 */
final class PreparedShardWriter implements Closeable {
  static final MessageType SCHEMA = MessageTypeParser.parseMessageType("""
      message prepared_pair {
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
      }
      """);

  /** What was written: the manifest's per-shard entry, plus the shard's length histograms. */
  record Written(long rows, long tokens, long stepTokens, String sha256, long bytes, LengthHistograms histograms)
      implements java.io.Serializable {}

  private final HashingOutputFile file;
  private final ParquetWriter<Group> writer;
  private final SimpleGroupFactory groups = new SimpleGroupFactory(SCHEMA);
  private final LengthHistograms histograms;
  private long rows;
  private long tokens;
  private long stepTokens;

  PreparedShardWriter(String path, Configuration conf, int maxLength) throws IOException {
    this.file = new HashingOutputFile(path, conf);
    this.histograms = new LengthHistograms(maxLength);
    this.writer = ExampleParquetWriter.builder(file)
        .withType(SCHEMA)
        .withConf(conf)
        .withWriteMode(ParquetFileWriter.Mode.OVERWRITE)
        .withCompressionCodec(CompressionCodecName.SNAPPY)
        .withDictionaryEncoding(false)
        .build();
  }

  void write(PreparedRow r) throws IOException {
    Group g = groups.newGroup()
        .append("pair_id", r.pairId())
        .append("source_file", r.sourceFile())
        .append("source_row", r.sourceRow())
        .append("prompt_text", r.promptText())
        .append("chosen_text", r.chosenText())
        .append("rejected_text", r.rejectedText());
    list(g.addGroup("prompt_ids"), r.promptIds());
    list(g.addGroup("chosen_ids"), r.chosenIds());
    list(g.addGroup("rejected_ids"), r.rejectedIds());
    g.append("prompt_len", r.promptIds().length)
        .append("chosen_len", r.chosenIds().length)
        .append("rejected_len", r.rejectedIds().length)
        .append("truncated", r.truncated());
    writer.write(g);
    rows++;
    tokens += r.promptIds().length + r.chosenIds().length + r.rejectedIds().length;
    stepTokens += r.tokens();
    histograms.add(r);
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
  Written written() {
    return new Written(rows, tokens, stepTokens, file.sha256(), file.bytes(), histograms);
  }
}
