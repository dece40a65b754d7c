package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.PrepareSettings.Format;
import io.sparkdpo.io.Storage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RowPreparerTest {
  @TempDir
  Path dir;

  private RowPreparer preparer(String template, Truncation truncation, Format format) {
    TokenizerFiles files = TokenizerFiles.read(ByteTokenizer.write(dir.resolve("tok"), null).toString(), Storage.local());
    TemplateSpec t = TemplateSpec.resolve(template, TextTokenizer.of(files), Storage.local());
    return new RowPreparer(new PrepareSpec(files, t, truncation, true, 0.0, 42, format, Map.of()));
  }

  private static RawRecord row(long n, String json) {
    return new RawRecord("file:/in/data.jsonl", n, json.getBytes(StandardCharsets.UTF_8));
  }

  private static int bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8).length;
  }

  @Test
  void hhRowWithMultiTurnUnicodeHistoryRoundTripsAndTokenizes() {
    String prompt = "\\n\\nHuman: 你好，请介绍一下自己。\\n\\nAssistant: 我是助手。\\n\\nHuman: مرحبا 👋\\n\\nAssistant:";
    RowOutcome o = preparer("hh", new Truncation(512, 128, true, false), Format.AUTO).prepare(List.of(
        row(7, "{\"chosen\": \"" + prompt + " أهلا! 😀\", \"rejected\": \"" + prompt + " ...\"}"))).get(0);
    PreparedRow r = (PreparedRow) o;
    String promptText = "\n\nHuman: 你好，请介绍一下自己。\n\nAssistant: 我是助手。\n\nHuman: مرحبا 👋\n\nAssistant:";
    assertEquals(promptText, r.promptText());
    assertEquals(" أهلا! 😀", r.chosenText());
    assertEquals(bytes(promptText), r.promptIds().length);
    assertEquals(bytes(" أهلا! 😀") + 1, r.chosenIds().length);
    assertEquals(ByteTokenizer.EOS, r.chosenIds()[r.chosenIds().length - 1]);
    assertEquals(bytes(" ...") + 1, r.rejectedIds().length);
    assertFalse(r.truncated());
    assertEquals(7, r.sourceRow());
    assertEquals(32, r.pairId().length());
  }

  @Test
  void aMultiTurnHhRowWithALongResponseKeepsThePromptsEndAndCutsTheResponse() {
    String prompt = "\\n\\nHuman: 你好\\n\\nAssistant: مرحبا!\\n\\nHuman: Write a long poem 😀\\n\\nAssistant:";
    String poem = "春眠不觉晓处处闻啼鸟夜来风雨声花落知多少".repeat(3); // 60 CJK characters, 180 bytes
    RowPreparer p = preparer("hh", new Truncation(64, 16, true, false), Format.AUTO);
    PreparedRow r = (PreparedRow) p.prepare(List.of(row(3, "{\"chosen\": \"" + prompt + " " + poem
        + "\", \"rejected\": \"" + prompt + " 不\"}"))).get(0);
    assertEquals("\n\nHuman: 你好\n\nAssistant: مرحبا!\n\nHuman: Write a long poem 😀\n\nAssistant:", r.promptText());
    assertTrue(r.truncated());
    TextTokenizer tok = TextTokenizer.load(dir.resolve("tok").toString(), Storage.local());
    assertEquals(16, r.promptIds().length); // keep_end: the emoji and the generation header survive
    assertEquals("😀\n\nAssistant:", tok.decode(r.promptIds()));
    assertEquals(48, r.chosenIds().length); // the room left: 64 - 16
    assertArrayEquals(java.util.Arrays.copyOf(tok.encode(" " + poem), 48), r.chosenIds());
    assertArrayEquals(tok.encode(" 不<|endoftext|>"), r.rejectedIds()); // short enough: kept whole, with EOS
  }

  @Test
  void everyRowLevelReasonIsReportedWithFieldAndDetail() {
    List<RawRecord> rows = new ArrayList<>();
    byte[] invalid = "{\"prompt\": \"caf\u00e9\", \"chosen\": \"a\", \"rejected\": \"b\"}".getBytes(StandardCharsets.UTF_8);
    invalid[14] = (byte) 0xFF;
    rows.add(new RawRecord("file:/in/data.jsonl", 1, invalid));
    rows.add(row(2, "{\"prompt\": \"q\", \"chosen\": \"a\","));
    rows.add(row(3, "[1, 2]"));
    rows.add(row(4, "{\"prompt\": \"q\", \"chosen\": \"a\"}"));
    rows.add(row(5, "{\"prompt\": \"q\", \"chosen\": null, \"rejected\": \"b\"}"));
    rows.add(row(6, "{\"prompt\": \"q\", \"chosen\": 5, \"rejected\": \"b\"}"));
    rows.add(row(7, "{\"prompt\": \"   \", \"chosen\": \"a\", \"rejected\": \"b\"}"));
    rows.add(row(8, "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \" \"}"));
    rows.add(row(9, "{\"prompt\": \"q\", \"chosen\": \"same\", \"rejected\": \"same\"}"));
    rows.add(row(10, "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: b\\n\\nAssistant: y\"}"));
    rows.add(row(11, "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: a\"}"));
    rows.add(row(12, "{\"prompt\": [{\"role\": \"tool\", \"content\": \"{}\"}], \"chosen\": \"a\", \"rejected\": \"b\"}"));
    rows.add(row(13, "{\"prompt\": \"" + "p".repeat(40) + "\", \"chosen\": \"" + "a".repeat(40) + "\", \"rejected\": \"b\"}"));
    rows.add(row(14, "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\", \"chosen\": \"c\"}"));
    rows.add(row(15, "{\"prompt\": \"fine\", \"chosen\": \"yes\", \"rejected\": \"no\"}"));
    rows.add(RawRecord.tooLarge("file:/in/data.jsonl", 16, "{\"prompt\": \"huge".getBytes(StandardCharsets.UTF_8), 14, 99_999_999));
    List<RowOutcome> out = preparer("hh", new Truncation(64, 16, true, true), Format.AUTO).prepare(rows);
    assertEquals(16, out.size());
    Map<Long, String> reasons = new TreeMap<>();
    for (RowOutcome o : out) {
      reasons.put(o.sourceRow(), o instanceof QuarantineRecord q ? q.reason() + "|" + q.field() : "kept");
    }
    Map<Long, String> expected = new TreeMap<>();
    expected.put(1L, "invalid_utf8|null");
    expected.put(2L, "malformed_json|null");
    expected.put(3L, "not_an_object|null");
    expected.put(4L, "missing_field|rejected");
    expected.put(5L, "null_field|chosen");
    expected.put(6L, "wrong_type|chosen");
    expected.put(7L, "empty_prompt|prompt");
    expected.put(8L, "empty_response|rejected");
    expected.put(9L, "identical_responses|chosen");
    expected.put(10L, "prompt_mismatch|rejected");
    expected.put(11L, "no_assistant_turn|rejected");
    expected.put(12L, "template_error|prompt");
    expected.put(13L, "prompt_too_long|prompt");
    expected.put(14L, "malformed_json|null");
    expected.put(15L, "kept");
    expected.put(16L, "row_too_large|null");
    assertEquals(expected, reasons);
    assertEquals(14, QuarantineReason.values().length - 1, "every reason but duplicate_pair is covered here");
    assertEquals("the row is 99999999 bytes, more than prepare.max_row_bytes (16777216); raw holds its first 14 "
        + "bytes", ((QuarantineRecord) out.get(15)).detail());
    assertEquals("{\"prompt\": \"hu", ((QuarantineRecord) out.get(15)).raw());

    QuarantineRecord utf8 = (QuarantineRecord) out.get(0);
    assertEquals("invalid UTF-8 byte 0xFF at byte 14 of the row", utf8.detail());
    assertEquals(invalid.length, Base64.getDecoder().decode(utf8.rawBase64()).length);
    assertTrue(utf8.raw().contains("\uFFFD"));
    QuarantineRecord wrong = (QuarantineRecord) out.get(5);
    assertEquals("field 'chosen': expected a string or a list of {role, content} messages, got a number (5)", wrong.detail());
    assertEquals("{\"prompt\": \"q\", \"chosen\": 5, \"rejected\": \"b\"}", wrong.raw());
    assertNull(wrong.rawBase64());
    assertTrue(((QuarantineRecord) out.get(13)).detail().contains("Duplicate field 'chosen'"),
        ((QuarantineRecord) out.get(13)).detail());
  }

  @Test
  void autoReadsEachRowAsTheFormatItShowsAndAForcedFormatAppliesToAll() {
    String hh = "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: y\"}";
    RowPreparer auto = preparer("hh", new Truncation(64, 16, true, false), Format.AUTO);
    PreparedRow asHh = (PreparedRow) auto.prepare(List.of(row(1, hh))).get(0);
    assertEquals("\n\nHuman: a\n\nAssistant:", asHh.promptText());
    // Forced to TRL, the same row has an implicit prompt: the common prefix of the two transcripts, which is an
    // HH transcript prompt and so becomes the same single user turn.
    RowPreparer trl = preparer("chatml", new Truncation(64, 16, true, false), Format.TRL);
    PreparedRow asTrl = (PreparedRow) trl.prepare(List.of(row(1, hh))).get(0);
    assertEquals("<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n", asTrl.promptText());
    assertEquals(asHh.pairId(), asTrl.pairId());
    assertEquals("x<|im_end|>\n", asTrl.chosenText());
  }

  @Test
  void pairIdIsAContentHashAndTheSplitFollowsThePrompt() {
    TokenizerFiles files = TokenizerFiles.read(ByteTokenizer.write(dir.resolve("tok"), null).toString(), Storage.local());
    RowPreparer half = new RowPreparer(new PrepareSpec(files, new TemplateSpec("hh", null, new java.util.TreeMap<>()),
        new Truncation(64, 16, true, false), true, 0.5, 42, Format.AUTO, Map.of()));
    List<RawRecord> rows = new ArrayList<>();
    for (int i = 0; i < 400; i++) {
      rows.add(row(i, "{\"prompt\": \"q" + (i / 2) + "\", \"chosen\": \"a" + i + "\", \"rejected\": \"b\"}"));
    }
    List<PreparedRow> out = half.prepare(rows).stream().map(PreparedRow.class::cast).collect(Collectors.toList());
    long eval = out.stream().filter(PreparedRow::eval).count();
    assertTrue(eval > 150 && eval < 250, "about half the prompts go to eval: " + eval);
    for (int i = 0; i < 400; i += 2) {
      assertEquals(out.get(i).eval(), out.get(i + 1).eval(), "rows sharing a prompt share a split");
    }
    assertEquals(400, out.stream().map(PreparedRow::pairId).distinct().count());
    assertEquals(out.get(3).pairId(), ((PreparedRow) half.prepare(List.of(new RawRecord("other", 99,
        "{\"rejected\": \"b\", \"chosen\": \"a3\", \"prompt\": \"q1\"}".getBytes(StandardCharsets.UTF_8)))).get(0)).pairId());
  }
}
