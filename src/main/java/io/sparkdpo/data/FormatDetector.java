package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.PrepareSettings.Format;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Tells the input format from a row's fields: {@code score_chosen}/{@code score_rejected} mean UltraFeedback, a
 * {@code prompt} means TRL (explicit prompt), {@code chosen}/{@code rejected} HH transcripts mean HH-RLHF, and
 * other {@code chosen}/{@code rejected} rows are TRL with an implicit prompt.
 */
public final class FormatDetector {
  private FormatDetector() {}

  /** The format one row looks like, if any. */
  public static Optional<Format> detectRow(JsonNode row) {
    if (!row.isObject() || !present(row, "chosen") || !present(row, "rejected")) {
      return Optional.empty();
    }
    if (present(row, "score_chosen") || present(row, "score_rejected")) {
      return Optional.of(Format.ULTRAFEEDBACK);
    }
    if (row.has("prompt")) {
      return Optional.of(Format.TRL);
    }
    JsonNode chosen = row.get("chosen");
    if (chosen.isTextual() && HhRlhfFormat.isTranscript(chosen.textValue())) {
      return Optional.of(Format.HH_RLHF);
    }
    return Optional.of(Format.TRL);
  }

  /**
   * The format of a file from its first rows: the format most rows look like. {@link Format#AUTO} (decide row by
   * row) when no sampled row is even a JSON object, e.g. an empty file or one starting with garbage.
   *
   * @throws IllegalArgumentException when the rows are objects but none looks like a preference pair
   */
  public static Format detectFile(String file, List<byte[]> sampleRows) {
    Map<Format, Integer> votes = new EnumMap<>(Format.class);
    TreeSet<String> fieldsSeen = new TreeSet<>();
    int objects = 0;
    for (byte[] raw : sampleRows) {
      JsonNode row;
      try {
        if (Utf8.firstInvalid(raw, 0, raw.length) >= 0) {
          continue;
        }
        row = JsonRows.parseObject(raw, 0, raw.length);
      } catch (BadRow e) {
        continue;
      }
      objects++;
      row.fieldNames().forEachRemaining(fieldsSeen::add);
      detectRow(row).ifPresent(f -> votes.merge(f, 1, Integer::sum));
    }
    if (objects == 0) {
      return Format.AUTO;
    }
    int sampled = objects;
    return votes.entrySet().stream()
        .max(Map.Entry.<Format, Integer>comparingByValue().thenComparing(e -> -e.getKey().ordinal()))
        .map(Map.Entry::getKey)
        .orElseThrow(() -> new IllegalArgumentException("cannot detect the format of " + file + ": its first "
            + sampled + " rows have the fields " + fieldsSeen + ", but a preference pair needs 'chosen' and "
            + "'rejected' (hh-rlhf, trl), with 'prompt' (trl) or 'prompt', 'score_chosen' and 'score_rejected' "
            + "(ultrafeedback); pass --format to force one"));
  }

  private static boolean present(JsonNode row, String field) {
    return row.has(field);
  }
}
