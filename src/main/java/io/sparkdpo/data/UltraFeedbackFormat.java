package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * UltraFeedback-binarized rows: {@code prompt} text, {@code chosen} and {@code rejected} message lists that repeat
 * the user turn before the assistant reply, and numeric {@code score_chosen} / {@code score_rejected}.
 */
public final class UltraFeedbackFormat implements PairFormat {
  public static final UltraFeedbackFormat INSTANCE = new UltraFeedbackFormat();

  private UltraFeedbackFormat() {}

  @Override
  public PreferencePair parse(JsonNode row) throws BadRow {
    String promptText = RowFields.text(row, "prompt");
    List<Turn> chosen = RowFields.messages(RowFields.required(row, "chosen"), "chosen");
    List<Turn> rejected = RowFields.messages(RowFields.required(row, "rejected"), "rejected");
    RowFields.number(row, "score_chosen");
    RowFields.number(row, "score_rejected");
    List<Turn> prompt = chosen.size() > 1 ? chosen.subList(0, chosen.size() - 1) : List.of(Turn.user(promptText));
    if (!prompt.isEmpty()) {
      Turn lastUser = prompt.get(prompt.size() - 1);
      if (!lastUser.content().equals(promptText)) {
        throw new BadRow(QuarantineReason.PROMPT_MISMATCH, "prompt",
            "field 'prompt' differs from the last prompt turn repeated in 'chosen'");
      }
    }
    String chosenReply = Conversations.lastAssistant(chosen, "chosen", prompt);
    String rejectedReply = Conversations.lastAssistant(rejected, "rejected", prompt);
    return PreferencePair.checked(prompt, chosenReply, rejectedReply);
  }
}
