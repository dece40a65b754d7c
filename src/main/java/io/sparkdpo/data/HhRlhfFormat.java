package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/**
 * Anthropic HH-RLHF rows: {@code chosen} and {@code rejected} are whole {@code \n\nHuman: ... \n\nAssistant: ...}
 * transcripts. The prompt is each transcript up to and including its last {@code \n\nAssistant:}; both prompts
 * must be equal, and the responses are what follows.
 */
public final class HhRlhfFormat implements PairFormat {
  public static final HhRlhfFormat INSTANCE = new HhRlhfFormat();
  static final String HUMAN = "\n\nHuman:";
  static final String ASSISTANT = "\n\nAssistant:";

  private HhRlhfFormat() {}

  @Override
  public PreferencePair parse(JsonNode row) throws BadRow {
    String chosen = RowFields.text(row, "chosen");
    String rejected = RowFields.text(row, "rejected");
    int c = lastAssistantMarker(chosen, "chosen");
    int r = lastAssistantMarker(rejected, "rejected");
    String prompt = chosen.substring(0, c);
    if (!prompt.equals(rejected.substring(0, r))) {
      throw new BadRow(QuarantineReason.PROMPT_MISMATCH, "rejected",
          "the transcripts differ before their last '\\n\\nAssistant:' (at character "
              + firstDifference(prompt, rejected.substring(0, r)) + ")");
    }
    return PreferencePair.checked(promptTurns(prompt), response(chosen.substring(c)),
        response(rejected.substring(r)));
  }

  /** Whether text looks like an HH transcript prompt (used to recognise HH prompts in TRL's string form). */
  static boolean isTranscriptPrompt(String text) {
    return text.contains(HUMAN) && text.endsWith(ASSISTANT);
  }

  /** Whether text looks like a whole HH transcript (used by format detection). */
  static boolean isTranscript(String text) {
    return text.contains(HUMAN) && text.contains(ASSISTANT);
  }

  /** End index of the last {@code \n\nAssistant:} marker. */
  private static int lastAssistantMarker(String transcript, String field) throws BadRow {
    int i = transcript.lastIndexOf(ASSISTANT);
    if (i < 0) {
      throw new BadRow(QuarantineReason.NO_ASSISTANT_TURN, field,
          "field '" + field + "' has no '\\n\\nAssistant:' turn");
    }
    return i + ASSISTANT.length();
  }

  /**
   * Splits a prompt ending in {@code \n\nAssistant:} into turns. Text before the first marker (rare) becomes a
   * system turn so nothing is lost; one space after each marker is part of the format, not the content.
   */
  static List<Turn> promptTurns(String prompt) {
    String body = prompt.substring(0, prompt.length() - ASSISTANT.length());
    List<Turn> turns = new ArrayList<>();
    int pos = 0;
    String role = null;
    while (true) {
      int h = body.indexOf(HUMAN, pos);
      int a = body.indexOf(ASSISTANT, pos);
      int next = h < 0 ? a : a < 0 ? h : Math.min(h, a);
      String text = body.substring(pos, next < 0 ? body.length() : next);
      if (role == null) {
        if (!text.isBlank()) {
          turns.add(new Turn(Turn.SYSTEM, text));
        }
      } else {
        turns.add(new Turn(role, stripMarkerSpace(text)));
      }
      if (next < 0) {
        return turns;
      }
      role = next == h ? Turn.USER : Turn.ASSISTANT;
      pos = next + (next == h ? HUMAN.length() : ASSISTANT.length());
    }
  }

  private static String response(String afterMarker) {
    return stripMarkerSpace(afterMarker);
  }

  private static String stripMarkerSpace(String s) {
    return s.startsWith(" ") ? s.substring(1) : s;
  }

  private static int firstDifference(String a, String b) {
    int n = Math.min(a.length(), b.length());
    for (int i = 0; i < n; i++) {
      if (a.charAt(i) != b.charAt(i)) {
        return i;
      }
    }
    return n;
  }
}
