package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;

/** Reads golden files written by tools/golden/train_golden.py and compares numbers with a relative tolerance. */
final class Golden {
  private Golden() {}

  static JsonNode load(String name) {
    try (InputStream in = Golden.class.getResourceAsStream("/golden/train/" + name)) {
      if (in == null) {
        throw new AssertionError("missing golden file " + name + "; run /usr/bin/python3 tools/golden/train_golden.py");
      }
      return new ObjectMapper().readTree(in);
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  static float[] floats(JsonNode array) {
    float[] out = new float[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) array.get(i).asDouble();
    }
    return out;
  }

  static long[] longs(JsonNode array) {
    long[] out = new long[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asLong();
    }
    return out;
  }

  /** |actual - expected| <= tol * max(1, |expected|) element-wise. */
  static void assertClose(String what, float[] expected, float[] actual, double tol) {
    assertEquals(expected.length, actual.length, what + ": length");
    for (int i = 0; i < expected.length; i++) {
      assertClose(what + "[" + i + "]", expected[i], actual[i], tol);
    }
  }

  static void assertClose(String what, double expected, double actual, double tol) {
    if (!(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)))) {
      fail(what + ": expected " + expected + " but was " + actual + " (tolerance " + tol + ")");
    }
  }
}
