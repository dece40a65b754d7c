package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.PrepareSettings.Format;

/** One input layout: turns a parsed JSON object row into a normalised {@link PreferencePair}. */
public interface PairFormat {
  /** @param row a JSON object */
  PreferencePair parse(JsonNode row) throws BadRow;

  /**
   * The row's reward margin (TRL's optional {@code margin} field: the loss becomes -log s(r_w - r_l - margin)), or
   * null when the format has none or the row does not give one.
   */
  default Double margin(JsonNode row) throws BadRow {
    return null;
  }

  /** The parser of a concrete (not {@code auto}) format. */
  static PairFormat of(Format format) {
    return switch (format) {
      case HH_RLHF -> HhRlhfFormat.INSTANCE;
      case TRL -> TrlFormat.INSTANCE;
      case ULTRAFEEDBACK -> UltraFeedbackFormat.INSTANCE;
      case AUTO -> throw new IllegalArgumentException("auto is resolved per file by FormatDetector");
    };
  }
}
