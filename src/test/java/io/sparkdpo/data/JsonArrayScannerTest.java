package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class JsonArrayScannerTest {
  private static List<String> scan(byte[] bytes) {
    List<String> out = new ArrayList<>();
    new JsonArrayScanner("f", new ByteArrayInputStream(bytes)).forEachRemaining(r -> {
      assertEquals(out.size() + 1, r.sourceRow());
      out.add(new String(r.bytes(), StandardCharsets.ISO_8859_1));
    });
    return out;
  }

  private static List<String> scan(String s) {
    return scan(s.getBytes(StandardCharsets.ISO_8859_1));
  }

  @Test
  void cutsElementsAtTopLevelCommasOnly() {
    assertEquals(List.of("{\"a\": \"x,]}\\\"\"}", "[1, {\"b\": [2]}]", "3", "\"s\""),
        scan("\uFEFF  [ {\"a\": \"x,]}\\\"\"} ,\n[1, {\"b\": [2]}], 3,\"s\" ]\n"
            .replace("\uFEFF", "\u00EF\u00BB\u00BF")));
    assertEquals(List.of(), scan("[]"));
    assertEquals(List.of(), scan(" [ \n ] "));
  }

  @Test
  void keepsInvalidUtf8BytesInsideTheirElement() {
    byte[] b = "[{\"a\": \"\u00FF\"}, {\"b\": 1}]".getBytes(StandardCharsets.ISO_8859_1);
    List<String> out = scan(b);
    assertEquals(2, out.size());
    assertEquals("{\"a\": \"\u00FF\"}", out.get(0));
  }

  @Test
  void structuralBreaksBecomeBadRecordsWithoutLosingBytes() {
    assertEquals(List.of("{\"a\": 1}", ""), scan("[{\"a\": 1},]"));
    assertEquals(List.of("{\"a\": 1}", "{\"b\": \"unterminated]"), scan("[{\"a\": 1}, {\"b\": \"unterminated]"));
    assertEquals(List.of("{\"a\": 1}", "garbage after"), scan("[{\"a\": 1}] garbage after"));
    assertEquals(List.of("{\"not\": \"an array\"}"), scan("{\"not\": \"an array\"}"));
  }
}
