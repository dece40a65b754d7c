package io.sparkdpo.inference;

import java.io.Serializable;

/**
 * Rows scored together on an executor, as the driver cut them: their indices in the input, and either their token
 * ids (a reward model: one padded forward pass) or their texts (a reward function).
 *
 * @param rows the rows' indices in the job's input
 * @param ids prompt + continuation token ids per row, or null for a reward function
 * @param prompts the prompt texts, or null for a reward model
 * @param continuations the continuation texts, or null for a reward model
 */
record ScoreBatch(int[] rows, int[][] ids, String[] prompts, String[] continuations) implements Serializable {

  /** The rows' indices and their scores, in the batch's row order. */
  record Scored(int[] rows, double[] scores) implements Serializable {}
}
