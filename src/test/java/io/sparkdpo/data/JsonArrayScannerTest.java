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

  @Test
  void aBrokenElementIsQuarantinedAloneAndTheElementsAfterItAreReadAsTheyAre() {
    // a stray closing brace: once it cut the rest of the file into one bad record
    assertEquals(List.of("{\"a\": 1}}", "{\"b\": 2}", "{\"c\": [3]}", "{\"d\": 4}"),
        scan("[{\"a\": 1}}, {\"b\": 2}, {\"c\": [3]}, {\"d\": 4}]"));
    // a bracket closing the wrong kind closes back to its own
    assertEquals(List.of("{\"a\": [1}", "{\"b\": 2}"), scan("[{\"a\": [1}, {\"b\": 2}]"));
    // a string left open ends its element at the line break
    assertEquals(List.of("{\"a\": \"oops},", "{\"b\": 2}", "{\"c\": 3}"),
        scan("[\n{\"a\": \"oops},\n{\"b\": 2},\n{\"c\": 3}\n]\n"));
    // pretty-printed: the rest of the broken element is one more bad record, the next element is whole
    assertEquals(List.of("{\n \"a\": \"oops,", "\"b\": 1\n}", "{\n \"c\": 3\n}"),
        scan("[{\n \"a\": \"oops,\n \"b\": 1\n},\n{\n \"c\": 3\n}]"));
  }

  @Test
  void anElementLargerThanTheLimitIsMeasuredAndOnlyItsStartKept() {
    String big = "{\"a\": \"" + "x".repeat(5000) + "\"}";
    List<RawRecord> out = new ArrayList<>();
    new JsonArrayScanner("f", new ByteArrayInputStream(("[{\"s\": 1}, " + big + ", {\"t\": 2}] " + big)
        .getBytes(StandardCharsets.US_ASCII)), 100).forEachRemaining(out::add);
    assertEquals(4, out.size());
    assertEquals("{\"s\": 1}", new String(out.get(0).bytes(), StandardCharsets.US_ASCII));
    assertEquals(false, out.get(1).isWhole());
    assertEquals(big.length(), out.get(1).size());
    assertEquals(big.substring(0, 100), new String(out.get(1).bytes(), StandardCharsets.US_ASCII)); // its start
    assertEquals("{\"t\": 2}", new String(out.get(2).bytes(), StandardCharsets.US_ASCII));
    assertEquals(false, out.get(3).isWhole()); // garbage after the array, too large as well
    assertEquals(4, out.get(3).sourceRow());
  }
}
