package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.sparkdpo.model.ScalarOps;

/**
 * The causal-LM loss of supervised fine-tuning: cross-entropy of each target token under the logits at its
 * position, summed over the positions the loss mask selects (response tokens only, or the whole sequence).
 * The mean over selected tokens is what transformers' models report as {@code loss}; for gradient accumulation
 * back-propagate {@link SftOutput#lossSum()} and divide by the token count of the whole global batch once.
 */
public final class SftLoss {
  private SftLoss() {}

  /**
   * @param logits [B, T, V] floating point, with gradient
   * @param targets [B, T] token ids: {@code targets[b, t]} is the token the logits at (b, t) should predict
   * @param lossMask [B, T] 1 where the position counts, 0 elsewhere (prompt, padding, the last position)
   */
  public static SftOutput compute(NDArray logits, NDArray targets, NDArray lossMask) {
    if (logits.getShape().dimension() != 3 || !logits.getShape().slice(0, 2).equals(targets.getShape())
        || !targets.getShape().equals(lossMask.getShape())) {
      throw new IllegalArgumentException("expected logits [B,T,V], targets [B,T], mask [B,T]; got "
          + logits.getShape() + ", " + targets.getShape() + ", " + lossMask.getShape());
    }
    NDArray lossSum;
    long tokens;
    try (NDArray mask = lossMask.toType(DataType.FLOAT32, true);
         NDArray logProbs = logits.logSoftmax(-1);
         NDArray ids = targets.toType(DataType.INT64, true);
         NDArray index = ids.expandDims(-1);
         NDArray picked = logProbs.gather(index, -1);
         NDArray perToken = picked.squeeze(-1);
         NDArray masked = perToken.mul(mask);
         NDArray count = mask.sum()) {
      tokens = Math.round(count.getFloat());
      if (tokens == 0) {
        throw new IllegalArgumentException("the loss mask selects no token: every position of the batch is "
            + "prompt or padding");
      }
      lossSum = masked.sum().negi();
    }
    NDArray meanLoss = ScalarOps.div(lossSum, tokens);
    return new SftOutput(lossSum, meanLoss, tokens);
  }
}
