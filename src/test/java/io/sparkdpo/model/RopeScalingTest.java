package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Rotary inverse frequencies against golden/rope_inv_freq.json: what torch computed in float32 with transformers'
 * own expressions (tools/golden/llama_golden.py) for the rotary settings of published models.
 */
class RopeScalingTest {

  static JsonNode table() throws Exception {
    return Json.MAPPER.readTree(Path.of(GoldenReferenceTest.folder("rope_inv_freq.json")).toFile());
  }

  @Test
  void inverseFrequenciesAreTransformersFloat32ValuesWithinOneUlp() throws Exception {
    int total = 0;
    int exact = 0;
    StringBuilder report = new StringBuilder();
    for (JsonNode c : table().get("cases")) {
      RopeScaling scaling = RopeScaling.fromJson(c.get("rope_scaling"), "rope_scaling");
      float[] java = scaling.inverseFrequencies(c.get("rope_theta").asDouble(), c.get("head_dim").asInt());
      JsonNode bits = c.get("inv_freq_float32_bits");
      assertEquals(bits.size(), java.length, c.get("name").asText());
      int worst = 0;
      for (int i = 0; i < java.length; i++) {
        int ulps = Math.abs(Float.floatToRawIntBits(java[i]) - bits.get(i).asInt());
        worst = Math.max(worst, ulps);
        exact += ulps == 0 ? 1 : 0;
        total++;
      }
      report.append(c.get("name").asText()).append(": ").append(worst).append(" ulp; ");
      assertTrue(worst <= 1, c.get("name").asText() + ": " + worst + " float32 ulps from transformers' value");
    }
    // Most are bit-identical; only torch's float32 pow may round the other way.
    assertTrue(exact >= 0.9 * total, exact + " of " + total + " bit-identical; " + report);
  }

  @Test
  void llama3KeepsHighFrequenciesDividesLowOnesAndInterpolatesBetween() {
    RopeScaling llama31 = RopeScaling.llama3(8.0, 1.0, 4.0, 8192);
    float[] plain = RopeScaling.NONE.inverseFrequencies(500000.0, 128);
    float[] scaled = llama31.inverseFrequencies(500000.0, 128);
    int high = 0;
    int low = 0;
    int medium = 0;
    for (int i = 0; i < plain.length; i++) {
      double wavelength = 2 * Math.PI / plain[i];
      if (wavelength < 8192 / 4.0) {
        assertEquals(plain[i], scaled[i], 0f, "pair " + i);
        high++;
      } else if (wavelength > 8192 / 1.0) {
        assertEquals(plain[i] / 8f, scaled[i], 0f, "pair " + i);
        low++;
      } else {
        double smooth = (8192 / wavelength - 1.0) / (4.0 - 1.0);
        assertEquals((1 - smooth) * plain[i] / 8 + smooth * plain[i], scaled[i], 1e-6 * plain[i], "pair " + i);
        assertTrue(scaled[i] < plain[i] && scaled[i] > plain[i] / 8f, "pair " + i);
        medium++;
      }
    }
    // Llama 3.1's 64 pairs, wavelength 2 pi 500000^(i/64): below 2048 for i <= 28 (untouched), above 8192 for
    // i >= 35 (slowed down by 8), the 6 between interpolated.
    assertEquals(29, high);
    assertEquals(6, medium);
    assertEquals(29, low);
    float[] linear = RopeScaling.linear(4.0).inverseFrequencies(10000.0, 64);
    float[] base = RopeScaling.NONE.inverseFrequencies(10000.0, 64);
    for (int i = 0; i < base.length; i++) {
      assertEquals(base[i] / 4f, linear[i], 0f);
    }
  }

  @Test
  void float32FrequenciesMatterAtLongPositions() {
    // Exact (double) frequencies would put Llama 3.1's rotation angles this far from the float32 ones transformers
    // uses at its last position: the reason the frequencies are rounded to float32 first.
    float[] f32 = RopeScaling.NONE.inverseFrequencies(500000.0, 128);
    double worst = 0;
    for (int i = 0; i < f32.length; i++) {
      double exact = 1.0 / Math.pow(500000.0, 2.0 * i / 128);
      worst = Math.max(worst, Math.abs(131071 * (exact - f32[i])));
    }
    assertTrue(worst > 1e-3, "max angle difference " + worst);
  }
}
