package io.sparkdpo.data;

/**
 * One row of a prepared shard as later stages read it. Response ids exclude the prompt and end with EOS when
 * prepare appended it (and the response was not truncated). The reference log-probs are null until the reference
 * stage has added them. {@code margin} is TRL's optional reward margin ({@code margin} column), null in folders
 * without one.
 */
public record PreparedPair(String pairId, String sourceFile, long sourceRow, String promptText, String chosenText,
    String rejectedText, int[] promptIds, int[] chosenIds, int[] rejectedIds, int promptLen, int chosenLen,
    int rejectedLen, boolean truncated, Double refChosenLogp, Double refRejectedLogp, Double margin) {

  /** A pair without a reward margin (prepared from rows that have none). */
  public PreparedPair(String pairId, String sourceFile, long sourceRow, String promptText, String chosenText,
      String rejectedText, int[] promptIds, int[] chosenIds, int[] rejectedIds, int promptLen, int chosenLen,
      int rejectedLen, boolean truncated, Double refChosenLogp, Double refRejectedLogp) {
    this(pairId, sourceFile, sourceRow, promptText, chosenText, rejectedText, promptIds, chosenIds, rejectedIds,
        promptLen, chosenLen, rejectedLen, truncated, refChosenLogp, refRejectedLogp, null);
  }

  /** Tokens a pass over both sequences reads: the prompt twice (before each response), then both responses. */
  public int pairTokens() {
    return 2 * promptIds.length + chosenIds.length + rejectedIds.length;
  }
}
