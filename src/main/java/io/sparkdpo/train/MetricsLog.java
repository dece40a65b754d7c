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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

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
 *
 * <p>A part can be torn: a writer killed mid-flush leaves a truncated last line, or a partial file on a store
 * without atomic writes. Metrics are a record, not state: {@link #readAll} keeps every whole record, skips what is
 * not one with a warning naming the file and line, and so a torn part never makes the run folder unusable (a
 * resumed run logs those steps again anyway).
 */
public final class MetricsLog implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(MetricsLog.class);
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
      String[] lines = text.split("\n", -1);
      int skipped = 0;
      for (int i = 0; i < lines.length; i++) {
        if (lines[i].isBlank()) {
          continue;
        }
        Map<String, Object> record = parse(lines[i]);
        if (record == null) {
          boolean last = i == lines.length - 1; // no newline after it: the flush was cut short
          LOG.warn("{} line {}: {}; skipped", part.getPath(), i + 1,
              last ? "a torn last line (the writer stopped mid-write)" : "not a metrics record (JSON with a numeric step)");
          skipped++;
          continue;
        }
        byKey.put((isEval(record) ? "eval:" : "train:") + record.get(MetricNames.STEP), record);
      }
      if (skipped > 0) {
        LOG.warn("{}: {} line(s) skipped, the whole records kept", part.getPath(), skipped);
      }
    }
    List<Map<String, Object>> records = new ArrayList<>(byKey.values());
    records.sort(Comparator.<Map<String, Object>>comparingLong(r -> ((Number) r.get(MetricNames.STEP)).longValue())
        .thenComparing(MetricsLog::isEval));
    return records;
  }

  /** One line as a record, or null when it is not a JSON object with a numeric step. */
  private static Map<String, Object> parse(String line) {
    try {
      Map<String, Object> record = Json.LINES.readValue(line, new TypeReference<LinkedHashMap<String, Object>>() {});
      return record != null && record.get(MetricNames.STEP) instanceof Number ? record : null;
    } catch (IOException e) {
      return null;
    }
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
