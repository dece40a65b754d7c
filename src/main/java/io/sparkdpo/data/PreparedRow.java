package io.sparkdpo.data;

/**
 * A kept pair, rendered and tokenized, on its way into a shard. {@code raw} is the input text, kept only until
 * duplicates are settled (a later duplicate is quarantined with it). {@code margin} is the row's TRL {@code margin}
 * field, null when it has none.
 */
public record PreparedRow(String pairId, String sourceFile, long sourceRow, String promptText, String chosenText,
    String rejectedText, int[] promptIds, int[] chosenIds, int[] rejectedIds, boolean truncated, boolean eval,
    String raw, Double margin) implements RowOutcome {

  /** Tokens a DPO step processes for this pair: the prompt once with each response. */
  public int tokens() {
    return 2 * promptIds.length + chosenIds.length + rejectedIds.length;
  }

  /** The longer of the two sequences (prompt + response): what a batch pads to. */
  public int sequenceLength() {
    return promptIds.length + Math.max(chosenIds.length, rejectedIds.length);
  }

  /** The same row without its raw input text, once duplicates are settled. */
  public PreparedRow withoutRaw() {
    return new PreparedRow(pairId, sourceFile, sourceRow, promptText, chosenText, rejectedText, promptIds, chosenIds,
        rejectedIds, truncated, eval, null, margin);
  }

  public String split() {
    return eval ? "eval" : "train";
  }
}
