package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/** Shared rules for turning prompt and response fields (text or message lists) into turns. */
final class Conversations {
  private Conversations() {}

  /** A prompt given as text (one user turn, or an HH transcript prompt) or as a message list. */
  static List<Turn> prompt(JsonNode v, String path) throws BadRow {
    if (v.isTextual()) {
      return promptFromText(v.textValue());
    }
    if (v.isArray()) {
      return RowFields.messages(v, path);
    }
    throw BadRow.wrongType(path, "a string or a list of {role, content} messages", RowFields.describe(v));
  }

  static List<Turn> promptFromText(String text) {
    return HhRlhfFormat.isTranscriptPrompt(text) ? HhRlhfFormat.promptTurns(text) : List.of(Turn.user(text));
  }

  /**
   * A response given as text, as one assistant message, or as the whole conversation (the prompt's turns
   * followed by one assistant message).
   */
  static String response(JsonNode v, String path, List<Turn> prompt) throws BadRow {
    if (v.isTextual()) {
      return v.textValue();
    }
    if (!v.isArray()) {
      throw BadRow.wrongType(path, "a string or a list of {role, content} messages", RowFields.describe(v));
    }
    List<Turn> messages = RowFields.messages(v, path);
    return lastAssistant(messages, path, prompt);
  }

  /** The final assistant message, after checking that everything before it repeats the prompt. */
  static String lastAssistant(List<Turn> messages, String path, List<Turn> prompt) throws BadRow {
    if (messages.isEmpty()) {
      throw new BadRow(QuarantineReason.NO_ASSISTANT_TURN, path, "field '" + path + "' is an empty message list");
    }
    int last = messages.size() - 1;
    Turn reply = messages.get(last);
    if (!reply.role().equals(Turn.ASSISTANT)) {
      throw new BadRow(QuarantineReason.NO_ASSISTANT_TURN, path + "[" + last + "].role",
          "field '" + path + "' must end with an assistant message, ends with role '" + reply.role() + "'");
    }
    if (last > 0 && !messages.subList(0, last).equals(prompt)) {
      throw new BadRow(QuarantineReason.PROMPT_MISMATCH, path,
          "the messages of '" + path + "' before its last assistant turn differ from the prompt");
    }
    return reply.content();
  }
}
