package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;

/** {@link SftLoss} result: summed and mean negative log-likelihood (scalars, with gradient) and the token count. */
public record SftOutput(NDArray lossSum, NDArray meanLoss, long tokens) implements AutoCloseable {
  @Override
  public void close() {
    lossSum.close();
    meanLoss.close();
  }
}
