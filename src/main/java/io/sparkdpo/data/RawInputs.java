package io.sparkdpo.data;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.octet_length;
import static org.apache.spark.sql.functions.sha2;
import static org.apache.spark.sql.functions.substring;
import static org.apache.spark.sql.functions.when;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.Job;
import org.apache.hadoop.mapreduce.lib.input.FileInputFormat;
import org.apache.hadoop.mapreduce.lib.input.FileSplit;
import org.apache.hadoop.util.LineReader;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaNewHadoopRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.util.SerializableConfiguration;
import scala.Tuple2;

/**
 * Reads inputs into {@link RawRecord}s with exact row numbers, in a fixed order (JSON-lines files, then JSON
 * arrays, then Parquet, then Arrow, then tables; each by path, then row) whatever the partitioning, so results are
 * reproducible.
 * <ul>
 *   <li>JSON lines: Hadoop's splittable line reader on raw bytes (UTF-8 is checked later, on the bytes). Line
 *   numbers come from a first pass that counts the lines of every split; blank lines count but are not rows.
 *   <li>JSON arrays: one task per file streams the elements ({@link JsonArrayScanner}).
 *   <li>Parquet: Spark's reader; each row rendered as JSON (nulls kept), numbered by {@code _metadata.row_index}.
 *   <li>Arrow IPC streams (Hugging Face datasets): one task per file renders its rows as JSON ({@link ArrowStreamRows}).
 *   <li>Tables: {@code spark.table}, each row rendered as JSON and numbered in the order of its SHA-256
 *   ({@link InputTables}).
 * </ul>
 */
final class RawInputs {
  static final int SAMPLE_ROWS = 200;
  private static final int SAMPLE_BYTES = 8 << 20;

  private final SparkSession spark;
  private final JavaSparkContext jsc;
  private final InputFiles files;
  private final long maxRowBytes;

  /** @param maxRowBytes larger rows are measured, never held whole: they come out as {@link RawRecord#tooLarge} */
  RawInputs(SparkSession spark, InputFiles files, long maxRowBytes) {
    this.spark = spark;
    this.jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    this.files = files;
    this.maxRowBytes = maxRowBytes;
  }

  JavaRDD<RawRecord> read(List<InputFile> inputs, long maxSplitBytes) {
    List<JavaRDD<RawRecord>> parts = new ArrayList<>();
    List<String> lines = paths(inputs, InputFile.JSONL);
    List<String> arrays = paths(inputs, InputFile.JSON_ARRAY);
    List<String> parquet = paths(inputs, InputFile.PARQUET);
    List<String> arrow = paths(inputs, InputFile.ARROW_STREAM);
    List<String> tables = paths(inputs, InputFile.TABLE);
    if (!lines.isEmpty()) {
      parts.add(jsonLines(lines, maxSplitBytes));
    }
    if (!arrays.isEmpty()) {
      parts.add(jsonArrays(arrays));
    }
    if (!parquet.isEmpty()) {
      parts.add(parquet(parquet));
    }
    if (!arrow.isEmpty()) {
      parts.add(arrowStreams(arrow));
    }
    for (String table : tables) {
      parts.add(table(table));
    }
    JavaRDD<RawRecord> all = parts.get(0);
    for (int i = 1; i < parts.size(); i++) {
      all = all.union(parts.get(i));
    }
    return all;
  }

  private static List<String> paths(List<InputFile> inputs, String layout) {
    return inputs.stream().filter(f -> f.layout().equals(layout)).map(InputFile::path).sorted().toList();
  }

  private record SplitLines(String path, long start, long lines) implements java.io.Serializable {}

  @SuppressWarnings("unchecked")
  private JavaRDD<RawRecord> jsonLines(List<String> paths, long maxSplitBytes) {
    Job job;
    try {
      job = Job.getInstance(new Configuration(jsc.hadoopConfiguration()));
      FileInputFormat.setInputPaths(job, paths.stream().map(Path::new).toArray(Path[]::new));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    FileInputFormat.setMaxInputSplitSize(job, maxSplitBytes);
    job.getConfiguration().setLong(BoundedLineRecordReader.MAX_ROW_BYTES, maxRowBytes);
    JavaNewHadoopRDD<LongWritable, Text> rdd = (JavaNewHadoopRDD<LongWritable, Text>) jsc.newAPIHadoopRDD(
        job.getConfiguration(), ExactFilesTextInputFormat.class, LongWritable.class, Text.class);
    List<SplitLines> counts = rdd.mapPartitionsWithInputSplit((split, it) -> {
      long n = 0;
      while (it.hasNext()) {
        it.next();
        n++;
      }
      FileSplit fs = (FileSplit) split;
      return List.of(new SplitLines(fs.getPath().toString(), fs.getStart(), n)).iterator();
    }, false).collect();
    Map<String, Long> firstLine = firstLines(counts);
    long max = maxRowBytes;
    return rdd.mapPartitionsWithInputSplit((split, it) -> {
      FileSplit fs = (FileSplit) split;
      String file = fs.getPath().toString();
      long before = firstLine.get(file + "@" + fs.getStart());
      return new LineRecords(file, before, it, max);
    }, false);
  }

  /** For each split (path@start): how many lines of its file come before it. */
  private static Map<String, Long> firstLines(List<SplitLines> counts) {
    List<SplitLines> sorted = new ArrayList<>(counts);
    sorted.sort((a, b) -> a.path.equals(b.path) ? Long.compare(a.start, b.start) : a.path.compareTo(b.path));
    Map<String, Long> first = new HashMap<>();
    String path = null;
    long before = 0;
    for (SplitLines s : sorted) {
      if (!s.path.equals(path)) {
        path = s.path;
        before = 0;
      }
      first.put(s.path + "@" + s.start, before);
      before += s.lines;
    }
    return first;
  }

  /**
   * Numbers a split's lines, copies their bytes (Hadoop reuses the Text) and skips blank lines; a line longer than
   * maxRowBytes (the key: its length) becomes a too-large record holding its start.
   */
  private static final class LineRecords extends Lookahead<RawRecord> {
    private final String file;
    private final Iterator<Tuple2<LongWritable, Text>> lines;
    private final long maxRowBytes;
    private long line;

    LineRecords(String file, long before, Iterator<Tuple2<LongWritable, Text>> lines, long maxRowBytes) {
      this.file = file;
      this.line = before;
      this.lines = lines;
      this.maxRowBytes = maxRowBytes;
    }

    @Override
    protected RawRecord advance() {
      while (lines.hasNext()) {
        Tuple2<LongWritable, Text> next = lines.next();
        Text t = next._2();
        line++;
        if (t.getLength() > maxRowBytes) {
          return RawRecord.tooLarge(file, line, t.getBytes(), t.getLength(), next._1().get());
        }
        if (!isBlank(t.getBytes(), t.getLength())) {
          return new RawRecord(file, line, Arrays.copyOf(t.getBytes(), t.getLength()));
        }
      }
      return null;
    }
  }

  static boolean isBlank(byte[] b, int len) {
    for (int i = 0; i < len; i++) {
      byte c = b[i];
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
        return false;
      }
    }
    return true;
  }

  private JavaRDD<RawRecord> jsonArrays(List<String> paths) {
    Broadcast<SerializableConfiguration> conf = HadoopConfBroadcast.of(spark.sparkContext());
    long max = maxRowBytes;
    return jsc.parallelize(paths, paths.size()).flatMap(path -> {
      InputFiles reader = new InputFiles(new io.sparkdpo.io.Storage(conf.value().value()));
      return new JsonArrayScanner(path, reader.open(path), max);
    });
  }

  private JavaRDD<RawRecord> parquet(List<String> paths) {
    Dataset<Row> df = spark.read().option("mergeSchema", "true").parquet(paths.toArray(new String[0]));
    long max = maxRowBytes;
    // A row's JSON larger than max_row_bytes goes no further than the task that renders it: only its start and size.
    Column size = octet_length(col("json"));
    return df.select(json(df).as("json"), col("_metadata.file_path").as("file"),
            col("_metadata.row_index").as("row"))
        .select(when(size.leq(max), col("json")).as("json"), col("file"), col("row"), size.as("size"),
            when(size.gt(max), substring(col("json"), 1, RawRecord.PREVIEW_BYTES)).as("preview"))
        .orderBy("file", "row")
        .javaRDD()
        .map(r -> {
          String file = normalise(r.getString(1));
          long row = r.getLong(2) + 1;
          if (r.isNullAt(0)) {
            return tooLarge(file, row, r.getString(4), r.getInt(3), max);
          }
          return new RawRecord(file, row, r.getString(0).getBytes(StandardCharsets.UTF_8));
        });
  }

  /**
   * A row of {@code size > maxRowBytes} bytes from the start of its JSON. The preview is cut to maxRowBytes bytes as
   * well as to {@link RawRecord#PREVIEW_BYTES}: with a smaller max_row_bytes a short over-long row's preview would
   * otherwise be the whole row, and it would read as a whole row.
   */
  private static RawRecord tooLarge(String file, long row, String preview, long size, long maxRowBytes) {
    byte[] start = preview.getBytes(StandardCharsets.UTF_8);
    return RawRecord.tooLarge(file, row, start, (int) Math.min(start.length, maxRowBytes), size);
  }

  private static Column json(Dataset<Row> df) {
    return InputTables.json(df);
  }

  private JavaRDD<RawRecord> arrowStreams(List<String> paths) {
    Broadcast<SerializableConfiguration> conf = HadoopConfBroadcast.of(spark.sparkContext());
    long max = maxRowBytes;
    return jsc.parallelize(paths, paths.size()).flatMap(path -> {
      InputFiles reader = new InputFiles(new io.sparkdpo.io.Storage(conf.value().value()));
      ArrowStreamRows rows = new ArrowStreamRows(path, reader.open(path), max);
      TaskContext task = TaskContext.get();
      if (task != null) {
        task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) t -> rows.close()); // frees Arrow's buffers if the task stops early
      }
      return rows;
    });
  }

  /**
   * A table's rows in the order of their JSON's SHA-256 (see {@link InputTables}), numbered from 1. Rows larger than
   * max_row_bytes are cut to a preview before the sort, so they never travel whole.
   */
  private JavaRDD<RawRecord> table(String input) {
    long max = maxRowBytes;
    return orderedTable(input).javaRDD().zipWithIndex().map(t -> {
      Row r = t._1();
      long row = t._2() + 1;
      if (r.isNullAt(0)) {
        return tooLarge(input, row, r.getString(2), r.getInt(1), max);
      }
      return new RawRecord(input, row, r.getString(0).getBytes(StandardCharsets.UTF_8));
    });
  }

  /** (json or null when too large, size, preview or null), sorted by the row's SHA-256. */
  private Dataset<Row> orderedTable(String input) {
    Dataset<Row> df = InputTables.rows(spark, InputFile.tableName(input));
    Column size = octet_length(col("json"));
    return df.select(json(df).as("json"))
        .select(sha2(col("json").cast("binary"), 256).as("sha"), when(size.leq(maxRowBytes), col("json")).as("json"),
            size.as("size"), when(size.gt(maxRowBytes), substring(col("json"), 1, RawRecord.PREVIEW_BYTES)).as("preview"))
        .orderBy("sha")
        .select("json", "size", "preview");
  }

  /** Spark reports file paths URL-encoded; Hadoop lists them decoded. */
  static String normalise(String sparkPath) {
    try {
      return new Path(new URI(sparkPath)).toString();
    } catch (URISyntaxException e) {
      return sparkPath;
    }
  }

  /** The first rows of a file, for format detection on the driver. */
  List<byte[]> sample(InputFile f) {
    try {
      return switch (f.layout()) {
        case InputFile.JSONL -> sampleLines(f.path());
        case InputFile.JSON_ARRAY -> sampleArray(f.path());
        case InputFile.PARQUET -> {
          Dataset<Row> df = spark.read().parquet(f.path());
          yield df.select(json(df).as("json")).where(octet_length(col("json")).leq(maxRowBytes))
              .limit(SAMPLE_ROWS).collectAsList().stream()
              .map(r -> r.getString(0).getBytes(StandardCharsets.UTF_8)).toList();
        }
        case InputFile.ARROW_STREAM -> sampleArrow(f.path());
        case InputFile.TABLE -> orderedTable(f.path()).where(col("json").isNotNull()).limit(SAMPLE_ROWS)
            .collectAsList().stream().map(r -> r.getString(0).getBytes(StandardCharsets.UTF_8)).toList();
        default -> Collections.emptyList();
      };
    } catch (IOException e) {
      throw new IllegalArgumentException("input file " + f.path() + " cannot be read: " + e.getMessage(), e);
    }
  }

  private List<byte[]> sampleLines(String path) throws IOException {
    List<byte[]> rows = new ArrayList<>();
    try (LineReader reader = new LineReader(files.open(path))) {
      Text t = new Text();
      long bytes = 0;
      int n;
      int keep = (int) Math.min(Integer.MAX_VALUE - 16, maxRowBytes + 1);
      while (rows.size() < SAMPLE_ROWS && bytes < SAMPLE_BYTES
          && (n = reader.readLine(t, keep, Integer.MAX_VALUE)) > 0) {
        bytes += n;
        if (t.getLength() <= maxRowBytes && !isBlank(t.getBytes(), t.getLength())) {
          rows.add(Arrays.copyOf(t.getBytes(), t.getLength()));
        }
      }
    }
    return rows;
  }

  private List<byte[]> sampleArrow(String path) throws IOException {
    List<byte[]> rows = new ArrayList<>();
    try (ArrowStreamRows scanner = new ArrowStreamRows(path, files.open(path), maxRowBytes)) {
      while (rows.size() < SAMPLE_ROWS && scanner.hasNext()) {
        RawRecord r = scanner.next();
        if (r.isWhole()) {
          rows.add(r.bytes());
        }
      }
    }
    return rows;
  }

  private List<byte[]> sampleArray(String path) throws IOException {
    List<byte[]> rows = new ArrayList<>();
    JsonArrayScanner scanner = new JsonArrayScanner(path, files.open(path), maxRowBytes);
    while (rows.size() < SAMPLE_ROWS && scanner.hasNext()) {
      RawRecord r = scanner.next();
      if (r.isWhole()) {
        rows.add(r.bytes());
      }
    }
    return rows;
  }
}
