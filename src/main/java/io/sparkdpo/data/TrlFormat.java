package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * TRL preference rows: explicit prompt ({@code prompt}, {@code chosen}, {@code rejected}), implicit prompt
 * ({@code chosen}, {@code rejected} only: the prompt is their longest common prefix, as TRL's extract_prompt), and
 * the conversational form where fields are lists of {@code {role, content}} messages. An optional numeric
 * {@code margin} (RewardTrainer's) is read by {@link #margin}.
 */
public final class TrlFormat implements PairFormat {
  public static final TrlFormat INSTANCE = new TrlFormat();
  /** TRL's name of the optional per-pair reward margin. */
  public static final String MARGIN = "margin";

  private TrlFormat() {}

  @Override
  public PreferencePair parse(JsonNode row) throws BadRow {
    JsonNode chosen = RowFields.required(row, "chosen");
    JsonNode rejected = RowFields.required(row, "rejected");
    JsonNode prompt = row.get("prompt");
    if (prompt != null) {
      if (prompt.isNull()) {
        throw BadRow.isNull("prompt");
      }
      List<Turn> turns = Conversations.prompt(prompt, "prompt");
      return PreferencePair.checked(turns, Conversations.response(chosen, "chosen", turns),
          Conversations.response(rejected, "rejected", turns));
    }
    if (chosen.isTextual() && rejected.isTextual()) {
      return implicitText(chosen.textValue(), rejected.textValue());
    }
    if (chosen.isArray() && rejected.isArray()) {
      return implicitMessages(RowFields.messages(chosen, "chosen"), RowFields.messages(rejected, "rejected"));
    }
    String bad = chosen.isTextual() || chosen.isArray() ? "rejected" : "chosen";
    JsonNode v = bad.equals("chosen") ? chosen : rejected;
    throw BadRow.wrongType(bad, "the same kind as '" + (bad.equals("chosen") ? "rejected" : "chosen")
        + "' (both strings or both message lists)", RowFields.describe(v));
  }

  /**
   * TRL's optional {@code margin} (RewardTrainer): absent is null; present, it must be a finite number. A null is
   * refused like a null prompt: a dataset with the column has a value in every row (TRL's collator needs one).
   */
  @Override
  public Double margin(JsonNode row) throws BadRow {
    JsonNode v = row.get(MARGIN);
    if (v == null) {
      return null;
    }
    if (v.isNull()) {
      throw BadRow.isNull(MARGIN);
    }
    if (!v.isNumber()) {
      throw BadRow.wrongType(MARGIN, "a number", RowFields.describe(v));
    }
    double m = v.doubleValue();
    if (!Double.isFinite(m)) {
      throw BadRow.wrongType(MARGIN, "a finite number", RowFields.describe(v) + ", beyond the range of a double");
    }
    return m;
  }

  /** Longest common prefix; a space just before the split point goes with the responses (TRL's rule). */
  private static PreferencePair implicitText(String chosen, String rejected) throws BadRow {
    int n = Math.min(chosen.length(), rejected.length());
    int idx = 0;
    while (idx < n && chosen.charAt(idx) == rejected.charAt(idx)) {
      idx++;
    }
    if (idx > 0 && idx < chosen.length() && Character.isLowSurrogate(chosen.charAt(idx))) {
      idx--; // never split a surrogate pair (two emoji can share their high surrogate)
    }
    if (idx < n && idx > 0 && chosen.charAt(idx - 1) == ' ') {
      idx--;
    }
    List<Turn> prompt = Conversations.promptFromText(chosen.substring(0, idx));
    return PreferencePair.checked(prompt, stripOneSpace(chosen.substring(idx)),
        stripOneSpace(rejected.substring(idx)));
  }

  private static PreferencePair implicitMessages(List<Turn> chosen, List<Turn> rejected) throws BadRow {
    int n = Math.min(chosen.size(), rejected.size());
    int idx = 0;
    while (idx < n && chosen.get(idx).equals(rejected.get(idx))) {
      idx++;
    }
    List<Turn> prompt = chosen.subList(0, idx);
    return PreferencePair.checked(prompt, single(chosen, idx, "chosen"), single(rejected, idx, "rejected"));
  }

  /** The response after the shared prefix must be exactly one assistant message. */
  private static String single(List<Turn> messages, int from, String path) throws BadRow {
    if (from >= messages.size()) {
      throw new BadRow(QuarantineReason.NO_ASSISTANT_TURN, path,
          "field '" + path + "' has no message after the prompt it shares with the other response");
    }
    if (messages.size() - from > 1) {
      throw new BadRow(QuarantineReason.PROMPT_MISMATCH, path + "[" + from + "]",
          "chosen and rejected diverge at message " + from + " but the response is not the final message");
    }
    Turn reply = messages.get(from);
    if (!reply.role().equals(Turn.ASSISTANT)) {
      throw new BadRow(QuarantineReason.NO_ASSISTANT_TURN, path + "[" + from + "].role",
          "the response in '" + path + "' has role '" + reply.role() + "', not assistant");
    }
    return reply.content();
  }

  private static String stripOneSpace(String s) {
    return s.startsWith(" ") ? s.substring(1) : s;
  }
}
