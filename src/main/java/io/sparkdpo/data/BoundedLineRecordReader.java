package io.sparkdpo.data;

import java.io.IOException;
import java.io.InputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;
import org.apache.hadoop.mapreduce.InputSplit;
import org.apache.hadoop.mapreduce.RecordReader;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.hadoop.mapreduce.lib.input.FileSplit;
import org.apache.hadoop.util.LineReader;

/**
 * The lines of a file split, as Hadoop's line reader splits them (a split that does not start the file skips its
 * first, partial line; one reads on while the next line starts at or before its end), but never holding more than
 * {@code maxRowBytes + 1} bytes of a line: a longer line is measured and only its start kept, where Hadoop's own
 * reader either holds it whole or (with a maximum length) drops it without a trace.
 *
 * <p>Key: the line's length in bytes (with its line break for a line that was cut); value: the line, or its first
 * {@code maxRowBytes + 1} bytes when the key is larger than {@code maxRowBytes}.
 */
final class BoundedLineRecordReader extends RecordReader<LongWritable, Text> {
  /** Where the configured prepare.max_row_bytes reaches the reader. */
  static final String MAX_ROW_BYTES = "spark-dpo.prepare.max_row_bytes";

  private final LongWritable key = new LongWritable();
  private final Text value = new Text();
  private int keep;
  private LineReader lines;
  private long end;
  private long pos;

  @Override
  public void initialize(InputSplit genericSplit, TaskAttemptContext context) throws IOException {
    FileSplit split = (FileSplit) genericSplit;
    Configuration conf = context.getConfiguration();
    keep = (int) Math.min(Integer.MAX_VALUE - 16, conf.getLong(MAX_ROW_BYTES, Integer.MAX_VALUE - 17) + 1);
    Path path = split.getPath();
    FSDataInputStream file = path.getFileSystem(conf).open(path);
    CompressionCodec codec = new CompressionCodecFactory(conf).getCodec(path);
    long start = split.getStart();
    if (codec != null) { // not splittable here: one split holds the whole file
      InputStream in = codec.createInputStream(file);
      lines = new LineReader(in, conf);
      end = Long.MAX_VALUE;
    } else {
      file.seek(start);
      lines = new LineReader(file, conf);
      end = start + split.getLength();
    }
    if (start != 0) {
      start += lines.readLine(new Text(), 0, Integer.MAX_VALUE); // the previous split reads that line
    }
    pos = start;
  }

  @Override
  public boolean nextKeyValue() throws IOException {
    if (pos > end) {
      return false;
    }
    int consumed = lines.readLine(value, keep, Integer.MAX_VALUE);
    if (consumed == 0) {
      return false;
    }
    pos += consumed;
    key.set(value.getLength() < keep ? value.getLength() : consumed);
    return true;
  }

  @Override
  public LongWritable getCurrentKey() {
    return key;
  }

  @Override
  public Text getCurrentValue() {
    return value;
  }

  @Override
  public float getProgress() {
    return 0;
  }

  @Override
  public void close() throws IOException {
    if (lines != null) {
      lines.close();
    }
  }
}
