package io.sparkdpo.data;

import java.io.Serializable;
import java.util.Arrays;

/**
 * Fits a tokenized pair into {@code maxLength} as TRL's DPO data collator does: when prompt plus the longer
 * response is too long, first cut the prompt to {@code maxPromptLength} (keeping its start or its end), then cut
 * both responses to the room left. With {@code quarantineLongPrompts}, a prompt that would have to be cut is
 * refused instead ({@link QuarantineReason#PROMPT_TOO_LONG}).
 *
 * <p>TRL cuts responses to {@code maxLength - maxPromptLength}; this uses the room actually left,
 * {@code maxLength - promptLength}, which keeps more of a response after a short prompt and never exceeds
 * {@code maxLength} either.
 */
public record Truncation(int maxLength, int maxPromptLength, boolean keepEnd, boolean quarantineLongPrompts)
    implements Serializable {

  /** A pair's token ids after fitting, and whether anything was cut. */
  public record Fitted(int[] prompt, int[] chosen, int[] rejected, boolean truncated) {}

  public Truncation {
    if (maxPromptLength >= maxLength) {
      throw new IllegalArgumentException("max_prompt_length (" + maxPromptLength + ") must be < max_length ("
          + maxLength + ")");
    }
  }

  public Fitted apply(int[] prompt, int[] chosen, int[] rejected) throws BadRow {
    boolean truncated = false;
    int longer = Math.max(chosen.length, rejected.length);
    if (prompt.length + longer > maxLength && prompt.length > maxPromptLength) {
      if (quarantineLongPrompts) {
        throw new BadRow(QuarantineReason.PROMPT_TOO_LONG, "prompt", "the prompt has " + prompt.length
            + " tokens, more than max_prompt_length " + maxPromptLength + ", and with the longer response ("
            + longer + " tokens) exceeds max_length " + maxLength);
      }
      prompt = keepEnd ? Arrays.copyOfRange(prompt, prompt.length - maxPromptLength, prompt.length)
          : Arrays.copyOf(prompt, maxPromptLength);
      truncated = true;
    }
    if (prompt.length + longer > maxLength) {
      int room = maxLength - prompt.length;
      chosen = chosen.length > room ? Arrays.copyOf(chosen, room) : chosen;
      rejected = rejected.length > room ? Arrays.copyOf(rejected, room) : rejected;
      truncated = true;
    }
    return new Fitted(prompt, chosen, rejected, truncated);
  }
}
