package io.sparkdpo.data;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.InputSplit;
import org.apache.hadoop.mapreduce.RecordReader;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.lib.input.TextInputFormat;

/**
 * Hadoop's line reader over exactly the given files. The stock format treats input paths as globs, so a file
 * named {@code data[1].jsonl} would not be found; the listing was already done by {@link InputFiles}. Lines are
 * read by {@link BoundedLineRecordReader}: a line longer than prepare.max_row_bytes is measured, not held.
 */
public final class ExactFilesTextInputFormat extends TextInputFormat {
  @Override
  public RecordReader<LongWritable, Text> createRecordReader(InputSplit split, TaskAttemptContext context) {
    return new BoundedLineRecordReader();
  }

  @Override
  protected List<FileStatus> listStatus(JobContext job) throws IOException {
    List<FileStatus> out = new ArrayList<>();
    for (Path p : getInputPaths(job)) {
      out.add(p.getFileSystem(job.getConfiguration()).getFileStatus(p));
    }
    return out;
  }
}
