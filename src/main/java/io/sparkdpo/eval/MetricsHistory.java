package io.sparkdpo.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.TreeMap;

/**
 * A training run's {@code metrics.jsonl}: one JSON object per line with TRL metric names ({@code loss}, {@code
 * rewards/accuracies}, ...), evaluation lines with the {@code eval/} prefix, and {@code step} on every line.
 * Non-finite values written as strings ({@code "NaN"}, {@code "Infinity"}, Jackson's default) are read back as
 * numbers; non-numeric fields are ignored.
 */
public final class MetricsHistory {
  private final String source;
  private final List<Row> rows;

  private MetricsHistory(String source, List<Row> rows) {
    this.source = source;
    this.rows = List.copyOf(rows);
  }

  /** One line: its step and numeric values by name. */
  public record Row(long step, Map<String, Double> values) {
    public Row {
      values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }
  }

  /** Values of one metric by increasing step. */
  public record Series(String key, double[] steps, double[] values) {
    public int size() {
      return steps.length;
    }

    public boolean isEmpty() {
      return steps.length == 0;
    }

    public double lastValue() {
      if (isEmpty()) {
        throw new IllegalStateException("series " + key + " is empty");
      }
      return values[values.length - 1];
    }
  }

  public static MetricsHistory read(Storage storage, String path) {
    return parse(storage.readString(path), path);
  }

  /** Parses JSON lines; a malformed line is an error naming {@code source}, the line and the field. */
  public static MetricsHistory parse(String text, String source) {
    List<Row> rows = new ArrayList<>();
    String[] lines = text.split("\n", -1);
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i].strip();
      if (line.isEmpty()) {
        continue;
      }
      String where = source + " line " + (i + 1);
      JsonNode node;
      try {
        node = Json.LINES.readTree(line);
      } catch (JsonProcessingException e) {
        throw new IllegalArgumentException(where + ": not valid JSON: " + e.getOriginalMessage());
      }
      if (node == null || !node.isObject()) {
        throw new IllegalArgumentException(where + ": expected a JSON object");
      }
      JsonNode step = node.get("step");
      if (step == null || !step.canConvertToLong() || !step.isIntegralNumber()) {
        throw new IllegalArgumentException(where + ": field 'step' must be a whole number, got "
            + (step == null ? "nothing" : step.toString()));
      }
      Map<String, Double> values = new LinkedHashMap<>();
      Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
      while (fields.hasNext()) {
        Map.Entry<String, JsonNode> f = fields.next();
        if (f.getKey().equals("step")) {
          continue;
        }
        Double v = number(f.getValue());
        if (v != null) {
          values.put(f.getKey(), v);
        }
      }
      rows.add(new Row(step.asLong(), values));
    }
    return new MetricsHistory(source, rows);
  }

  private static Double number(JsonNode v) {
    if (v.isNumber()) {
      return v.asDouble();
    }
    if (v.isTextual()) {
      switch (v.asText()) {
        case "NaN":
          return Double.NaN;
        case "Infinity":
          return Double.POSITIVE_INFINITY;
        case "-Infinity":
          return Double.NEGATIVE_INFINITY;
        default:
          return null;
      }
    }
    return null;
  }

  public String source() {
    return source;
  }

  public List<Row> rows() {
    return rows;
  }

  /**
   * Every value of {@code key} ordered by step. When a step appears more than once (a run resumed from a checkpoint
   * repeats the steps after it), the later line wins.
   */
  public Series series(String key) {
    TreeMap<Long, Double> byStep = new TreeMap<>();
    for (Row r : rows) {
      Double v = r.values().get(key);
      if (v != null) {
        byStep.put(r.step(), v);
      }
    }
    double[] steps = new double[byStep.size()];
    double[] values = new double[byStep.size()];
    int i = 0;
    for (Map.Entry<Long, Double> e : byStep.entrySet()) {
      steps[i] = e.getKey();
      values[i++] = e.getValue();
    }
    return new Series(key, steps, values);
  }

  /** The last value of {@code key}, if any line has it. */
  public OptionalDouble last(String key) {
    Series s = series(key);
    return s.isEmpty() ? OptionalDouble.empty() : OptionalDouble.of(s.lastValue());
  }

  /** The largest step of any line (0 for an empty file). */
  public long lastStep() {
    return rows.stream().mapToLong(Row::step).max().orElse(0);
  }
}
