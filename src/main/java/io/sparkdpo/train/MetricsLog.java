package io.sparkdpo.train;

import com.fasterxml.jackson.core.type.TypeReference;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.hadoop.fs.FileStatus;

/**
 * Per-step metrics of a run as JSON lines, written through {@link Storage} so the run folder may be local, on
 * HDFS or in an object store.
 *
 * <p>Object stores cannot append, and rewriting one growing object is quadratic, so records are buffered and
 * each flush writes a new part, {@code RUN/metrics/part-NNNNNN.jsonl}; a flush happens when
 * {@code flushIntervalNanos} have passed since the last one, on {@link #flush()} (e.g. before a checkpoint) and
 * on {@link #close()}, which also writes the consolidated {@code RUN/metrics.jsonl}. A resumed run continues the
 * part numbering; {@link #readAll} keeps the last record of each (train|eval, step), so steps repeated after a
 * resume replace the ones logged before the crash.
 */
public final class MetricsLog implements AutoCloseable {
  public static final String PARTS = "metrics";
  public static final String CONSOLIDATED = "metrics.jsonl";
  private static final Pattern PART = Pattern.compile("part-(\\d{6})\\.jsonl");

  private final Storage storage;
  private final String runDir;
  private final LongSupplier nanoClock;
  private final long flushIntervalNanos;
  private final StringBuilder buffer = new StringBuilder();
  private int nextPart;
  private long lastFlush;

  public MetricsLog(Storage storage, String runDir, long flushIntervalNanos, LongSupplier nanoClock) {
    this.storage = storage;
    this.runDir = Storage.qualify(runDir);
    this.nanoClock = nanoClock;
    this.flushIntervalNanos = flushIntervalNanos;
    List<FileStatus> existing = parts(storage, this.runDir);
    this.nextPart = existing.isEmpty() ? 0 : partNumber(existing.get(existing.size() - 1)) + 1;
    this.lastFlush = nanoClock.getAsLong();
  }

  /** A log that flushes at most every 30 seconds. */
  public static MetricsLog open(Storage storage, String runDir) {
    return new MetricsLog(storage, runDir, 30_000_000_000L, System::nanoTime);
  }

  /** Buffers one record (it must hold {@code step}); flushes if the interval has passed. */
  public void log(Map<String, ?> record) {
    if (!(record.get(MetricNames.STEP) instanceof Number)) {
      throw new IllegalArgumentException("a metrics record needs a numeric 'step', got " + record.keySet());
    }
    try {
      buffer.append(Json.LINES.writeValueAsString(record)).append('\n');
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (nanoClock.getAsLong() - lastFlush >= flushIntervalNanos) {
      flush();
    }
  }

  /** Writes buffered records as a new part (nothing if the buffer is empty). */
  public void flush() {
    lastFlush = nanoClock.getAsLong();
    if (buffer.length() == 0) {
      return;
    }
    storage.writeString(Storage.join(Storage.join(runDir, PARTS), String.format("part-%06d.jsonl", nextPart)),
        buffer.toString());
    nextPart++;
    buffer.setLength(0);
  }

  /** Flushes, then writes {@code RUN/metrics.jsonl} with every record of the run in step order. */
  @Override
  public void close() {
    flush();
    StringBuilder all = new StringBuilder();
    try {
      for (Map<String, Object> r : readAll(storage, runDir)) {
        all.append(Json.LINES.writeValueAsString(r)).append('\n');
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    storage.writeString(Storage.join(runDir, CONSOLIDATED), all.toString());
  }

  /**
   * All records of a run from its parts, ordered by step (train before eval at the same step), the last record
   * of each (train|eval, step) winning.
   */
  public static List<Map<String, Object>> readAll(Storage storage, String runDir) {
    Map<String, Map<String, Object>> byKey = new LinkedHashMap<>();
    for (FileStatus part : parts(storage, Storage.qualify(runDir))) {
      String text = storage.readString(part.getPath().toString());
      int lineNo = 0;
      for (String line : text.split("\n")) {
        lineNo++;
        if (line.isBlank()) {
          continue;
        }
        Map<String, Object> record;
        try {
          record = Json.LINES.readValue(line, new TypeReference<LinkedHashMap<String, Object>>() {});
        } catch (IOException e) {
          throw new UncheckedIOException(part.getPath() + " line " + lineNo + ": not a JSON object: "
              + e.getMessage(), e);
        }
        byKey.put((isEval(record) ? "eval:" : "train:") + record.get(MetricNames.STEP), record);
      }
    }
    List<Map<String, Object>> records = new ArrayList<>(byKey.values());
    records.sort(Comparator.<Map<String, Object>>comparingLong(r -> ((Number) r.get(MetricNames.STEP)).longValue())
        .thenComparing(MetricsLog::isEval));
    return records;
  }

  private static boolean isEval(Map<String, Object> record) {
    return record.keySet().stream().anyMatch(k -> k.startsWith(MetricNames.EVAL));
  }

  private static int partNumber(FileStatus part) {
    Matcher m = PART.matcher(part.getPath().getName());
    if (!m.matches()) {
      throw new IllegalStateException("not a metrics part: " + part.getPath());
    }
    return Integer.parseInt(m.group(1));
  }

  private static List<FileStatus> parts(Storage storage, String runDir) {
    List<FileStatus> parts = new ArrayList<>();
    for (FileStatus s : storage.list(Storage.join(runDir, PARTS))) {
      if (PART.matcher(s.getPath().getName()).matches()) {
        parts.add(s);
      }
    }
    return parts;
  }
}
