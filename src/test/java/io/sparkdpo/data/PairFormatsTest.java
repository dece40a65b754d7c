package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.config.PrepareSettings.Format;
import java.util.List;
import org.junit.jupiter.api.Test;

class PairFormatsTest {
  private static final ObjectMapper M = new ObjectMapper();

  private static JsonNode json(String s) {
    try {
      return M.readTree(s);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static BadRow bad(PairFormat f, String row) {
    return assertThrows(BadRow.class, () -> f.parse(json(row)));
  }

  @Test
  void hhRlhfSplitsMultiTurnTranscriptsAtTheLastAssistantMarker() throws BadRow {
    String prompt = "\\n\\nHuman: Hi there\\n\\nAssistant: Hello! How can I help?\\n\\nHuman: 东京在哪里？\\n\\nAssistant:";
    PreferencePair p = HhRlhfFormat.INSTANCE.parse(json("{\"chosen\": \"" + prompt + " 在日本。 🗾\", "
        + "\"rejected\": \"" + prompt + " لا أعرف\"}"));
    assertEquals(List.of(Turn.user("Hi there"), Turn.assistant("Hello! How can I help?"), Turn.user("东京在哪里？")),
        p.prompt());
    assertEquals("在日本。 🗾", p.chosen());
    assertEquals("لا أعرف", p.rejected());
  }

  @Test
  void hhRlhfKeepsTextBeforeTheFirstMarkerAsASystemTurn() throws BadRow {
    PreferencePair p = HhRlhfFormat.INSTANCE.parse(json(
        "{\"chosen\": \"Be brief.\\n\\nHuman: q\\n\\nAssistant: a\", \"rejected\": \"Be brief.\\n\\nHuman: q\\n\\nAssistant: b\"}"));
    assertEquals(List.of(new Turn("system", "Be brief."), Turn.user("q")), p.prompt());
  }

  @Test
  void hhRlhfRejectsDifferentPromptsMissingAssistantAndWrongTypes() {
    BadRow differ = bad(HhRlhfFormat.INSTANCE,
        "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: b\\n\\nAssistant: y\"}");
    assertEquals(QuarantineReason.PROMPT_MISMATCH, differ.reason());
    assertEquals("rejected", differ.field());
    BadRow noAssistant = bad(HhRlhfFormat.INSTANCE,
        "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: a\"}");
    assertEquals(QuarantineReason.NO_ASSISTANT_TURN, noAssistant.reason());
    assertEquals("rejected", noAssistant.field());
    assertEquals(QuarantineReason.WRONG_TYPE, bad(HhRlhfFormat.INSTANCE, "{\"chosen\": [], \"rejected\": \"x\"}").reason());
    assertEquals(QuarantineReason.MISSING_FIELD, bad(HhRlhfFormat.INSTANCE, "{\"chosen\": \"x\"}").reason());
    assertEquals(QuarantineReason.EMPTY_RESPONSE, bad(HhRlhfFormat.INSTANCE,
        "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant:  \", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: y\"}").reason());
    assertEquals(QuarantineReason.EMPTY_PROMPT, bad(HhRlhfFormat.INSTANCE,
        "{\"chosen\": \"\\n\\nHuman: \\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: \\n\\nAssistant: y\"}").reason());
  }

  @Test
  void trlExplicitPromptAsTextOrMessages() throws BadRow {
    PreferencePair text = TrlFormat.INSTANCE.parse(json("{\"prompt\": \"Sky colour?\", \"chosen\": \"Blue.\", \"rejected\": \"Green.\"}"));
    assertEquals(new PreferencePair(List.of(Turn.user("Sky colour?")), "Blue.", "Green."), text);
    PreferencePair conv = TrlFormat.INSTANCE.parse(json("{\"prompt\": [{\"role\": \"system\", \"content\": \"terse\"}, "
        + "{\"role\": \"user\", \"content\": \"Sky colour?\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": \"Blue.\"}], "
        + "\"rejected\": [{\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"Gr\"}, {\"type\": \"text\", \"text\": \"een.\"}]}]}"));
    assertEquals(new PreferencePair(List.of(new Turn("system", "terse"), Turn.user("Sky colour?")), "Blue.", "Green."), conv);
  }

  @Test
  void trlStringPromptThatIsAnHhTranscriptIsSplitIntoTurns() throws BadRow {
    PreferencePair p = TrlFormat.INSTANCE.parse(json(
        "{\"prompt\": \"\\n\\nHuman: q1\\n\\nAssistant: a1\\n\\nHuman: q2\\n\\nAssistant:\", \"chosen\": \" yes\", \"rejected\": \" no\"}"));
    assertEquals(List.of(Turn.user("q1"), Turn.assistant("a1"), Turn.user("q2")), p.prompt());
    assertEquals(" yes", p.chosen());
  }

  @Test
  void trlImplicitPromptIsTheLongestCommonPrefix() throws BadRow {
    PreferencePair text = TrlFormat.INSTANCE.parse(json("{\"chosen\": \"The sky is blue.\", \"rejected\": \"The sky is green.\"}"));
    assertEquals(new PreferencePair(List.of(Turn.user("The sky is")), "blue.", "green."), text);
    PreferencePair emoji = TrlFormat.INSTANCE.parse(json("{\"chosen\": \"Pick: 😀\", \"rejected\": \"Pick: 😁\"}"));
    assertEquals(new PreferencePair(List.of(Turn.user("Pick:")), "😀", "😁"), emoji);
    PreferencePair conv = TrlFormat.INSTANCE.parse(json("{\"chosen\": [{\"role\": \"user\", \"content\": \"Sky?\"}, "
        + "{\"role\": \"assistant\", \"content\": \"Blue.\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"Sky?\"}, "
        + "{\"role\": \"assistant\", \"content\": \"Green.\"}]}"));
    assertEquals(new PreferencePair(List.of(Turn.user("Sky?")), "Blue.", "Green."), conv);
  }

  @Test
  void trlConversationalErrorsNameTheMessageField() {
    BadRow nullContent = bad(TrlFormat.INSTANCE, "{\"prompt\": [{\"role\": \"user\", \"content\": \"q\"}], "
        + "\"chosen\": [{\"role\": \"assistant\", \"content\": null}], \"rejected\": \"x\"}");
    assertEquals(QuarantineReason.NULL_FIELD, nullContent.reason());
    assertEquals("chosen[0].content", nullContent.field());
    BadRow missingRole = bad(TrlFormat.INSTANCE, "{\"prompt\": [{\"content\": \"q\"}], \"chosen\": \"a\", \"rejected\": \"b\"}");
    assertEquals(QuarantineReason.MISSING_FIELD, missingRole.reason());
    assertEquals("prompt[0].role", missingRole.field());
    BadRow userReply = bad(TrlFormat.INSTANCE, "{\"prompt\": \"q\", \"chosen\": [{\"role\": \"user\", \"content\": \"a\"}], \"rejected\": \"b\"}");
    assertEquals(QuarantineReason.NO_ASSISTANT_TURN, userReply.reason());
    assertEquals("chosen[0].role", userReply.field());
    BadRow mixed = bad(TrlFormat.INSTANCE, "{\"chosen\": \"a\", \"rejected\": [{\"role\": \"assistant\", \"content\": \"b\"}]}");
    assertEquals(QuarantineReason.WRONG_TYPE, mixed.reason());
    assertEquals("rejected", mixed.field());
    assertEquals(QuarantineReason.IDENTICAL_RESPONSES,
        bad(TrlFormat.INSTANCE, "{\"prompt\": \"q\", \"chosen\": \"same\", \"rejected\": \"same\"}").reason());
  }

  @Test
  void ultraFeedbackTakesThePromptFromTheRepeatedUserTurn() throws BadRow {
    String row = "{\"prompt\": \"Name a colour\", \"prompt_id\": \"x1\", "
        + "\"chosen\": [{\"role\": \"user\", \"content\": \"Name a colour\"}, {\"role\": \"assistant\", \"content\": \"Teal\"}], "
        + "\"rejected\": [{\"role\": \"user\", \"content\": \"Name a colour\"}, {\"role\": \"assistant\", \"content\": \"Seven\"}], "
        + "\"score_chosen\": 8.5, \"score_rejected\": 2}";
    assertEquals(new PreferencePair(List.of(Turn.user("Name a colour")), "Teal", "Seven"),
        UltraFeedbackFormat.INSTANCE.parse(json(row)));
    BadRow mismatch = bad(UltraFeedbackFormat.INSTANCE, row.replace("\"content\": \"Name a colour\"}, {\"role\": \"assistant\", \"content\": \"Seven\"",
        "\"content\": \"Name a color\"}, {\"role\": \"assistant\", \"content\": \"Seven\""));
    assertEquals(QuarantineReason.PROMPT_MISMATCH, mismatch.reason());
    assertEquals("rejected", mismatch.field());
    BadRow score = bad(UltraFeedbackFormat.INSTANCE, row.replace("\"score_rejected\": 2", "\"score_rejected\": \"2\""));
    assertEquals(QuarantineReason.WRONG_TYPE, score.reason());
    assertEquals("score_rejected", score.field());
  }

  @Test
  void detectsEachFormatFromItsFieldsAndFailsClearlyOnOthers() {
    assertEquals(Format.HH_RLHF, FormatDetector.detectRow(json("{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\", \"rejected\": \"x\"}")).orElseThrow());
    assertEquals(Format.TRL, FormatDetector.detectRow(json("{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}")).orElseThrow());
    assertEquals(Format.TRL, FormatDetector.detectRow(json("{\"chosen\": \"a b\", \"rejected\": \"a c\"}")).orElseThrow());
    assertEquals(Format.ULTRAFEEDBACK, FormatDetector.detectRow(json("{\"prompt\": \"p\", \"chosen\": [], \"rejected\": [], \"score_chosen\": 1}")).orElseThrow());
    List<byte[]> sft = List.of("{\"messages\": []}".getBytes(), "{\"text\": \"x\"}".getBytes());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> FormatDetector.detectFile("file:/d/sft.jsonl", sft));
    assertEquals("cannot detect the format of file:/d/sft.jsonl: its first 2 rows have the fields [messages, text], "
        + "but a preference pair needs 'chosen' and 'rejected' (hh-rlhf, trl), with 'prompt' (trl) or 'prompt', "
        + "'score_chosen' and 'score_rejected' (ultrafeedback); pass --format to force one", e.getMessage());
    assertEquals(Format.AUTO, FormatDetector.detectFile("f", List.of("garbage".getBytes())));
  }

  @Test
  void trlReadsAnOptionalFiniteNumericMarginAndNamesTheFieldOfABadOne() throws BadRow {
    String row = "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"";
    assertEquals(0.75, TrlFormat.INSTANCE.margin(json(row + ", \"margin\": 0.75}")));
    assertEquals(-2.0, TrlFormat.INSTANCE.margin(json(row + ", \"margin\": -2}")));
    assertEquals(null, TrlFormat.INSTANCE.margin(json(row + "}")));
    assertEquals(null, HhRlhfFormat.INSTANCE.margin(json(row + ", \"margin\": 1}")), "only TRL rows have margins");
    for (String[] c : new String[][] {{"\"1.5\"", "wrong_type"}, {"null", "null_field"}, {"true", "wrong_type"},
        {"1e999", "wrong_type"}, {"[1]", "wrong_type"}}) {
      BadRow e = assertThrows(BadRow.class, () -> TrlFormat.INSTANCE.margin(json(row + ", \"margin\": " + c[0] + "}")));
      assertEquals(c[1], e.reason().code(), c[0]);
      assertEquals("margin", e.field(), c[0]);
    }
  }
}
