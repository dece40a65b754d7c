package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;

/**
 * What {@link DpoLoss#compute} returns: the mean loss (scalar, with gradient), the per-pair losses, and the
 * detached implicit rewards {@code beta (log pi - log ref)} of chosen and rejected responses, all [B]. The policy
 * log-probs are the caller's inputs, kept for the metrics; closing this output does not close them. {@code nll} is
 * the micro-batch's chosen NLL per token (a scalar, with gradient) with {@code rpo_alpha}, else null.
 */
public record DpoOutput(NDArray loss, NDArray losses, NDArray chosenRewards, NDArray rejectedRewards,
                        NDArray policyChosen, NDArray policyRejected, NDArray nll) implements AutoCloseable {

  /** Batch sums for the metrics, copied to the host once (no logits here: {@link DpoStats#withMeanLogits}). */
  public DpoStats stats() {
    float[] l = losses.toFloatArray();
    float[] c = chosenRewards.toFloatArray();
    float[] r = rejectedRewards.toFloatArray();
    float[] pc = policyChosen.toFloatArray();
    float[] pr = policyRejected.toFloatArray();
    double loss = 0;
    double chosen = 0;
    double rejected = 0;
    double correct = 0;
    double logpChosen = 0;
    double logpRejected = 0;
    for (int i = 0; i < l.length; i++) {
      loss += l[i];
      chosen += c[i];
      rejected += r[i];
      correct += c[i] > r[i] ? 1 : 0;
      logpChosen += pc[i];
      logpRejected += pr[i];
    }
    // The NLL is the micro-batch's, so it weighs as many pairs as the batch holds (like TRL's mean over batches).
    double nllSum = nll == null ? 0 : (double) nll.getFloat() * l.length;
    return new DpoStats(l.length, loss, chosen, rejected, correct, logpChosen, logpRejected, nllSum, 0, 0);
  }

  /** The mean loss as a host number (one device sync). */
  public double lossValue() {
    return loss.getFloat();
  }

  @Override
  public void close() {
    loss.close();
    losses.close();
    chosenRewards.close();
    rejectedRewards.close();
    if (nll != null) {
      nll.close();
    }
  }
}
