package io.sparkdpo.eval;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/** Golden values from tools/eval/golden_stats.py (mpmath, 40 digits), committed as a test resource. */
final class GoldenStats {
  private GoldenStats() {}

  static JsonNode load() {
    try (InputStream in = GoldenStats.class.getResourceAsStream("golden-stats.json")) {
      return Json.MAPPER.readTree(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static double[] doubles(JsonNode array) {
    double[] out = new double[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asDouble();
    }
    return out;
  }
}
