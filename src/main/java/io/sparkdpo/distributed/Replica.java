package io.sparkdpo.distributed;

import io.sparkdpo.train.PayloadWriter;
import java.util.List;
import java.util.Map;

/**
 * One rank's copy of the model and optimizer, as {@link WorkerLoop} drives it. Every method is called on every
 * rank in the same order (the all-reduce inside {@link #trainStep} depends on it), except {@link #checkpoint},
 * which only rank 0 calls. Nothing here needs Spark; implementations use the context's all-reduce only through
 * {@link WorkerContext#gradientReducer()} inside {@link #trainStep}.
 */
public interface Replica extends AutoCloseable {

  /** Optimizer steps completed (0 for a fresh start, the checkpoint's step after a resume). */
  long stepsDone();

  /**
   * One optimizer step, number {@code step} (1-based; {@code stepsDone() == step} afterwards): forward and
   * backward on this rank's micro-batches, all-reduce of the gradients through
   * {@link WorkerContext#gradientReducer()}, then the update every rank applies identically.
   *
   * @return this rank's metrics of the step; the loop averages them over ranks (weighted) for the driver
   */
  LocalMetrics trainStep(long step) throws Exception;

  /** Evaluation on this rank's share of the eval data after {@code step}; none by default. */
  default LocalMetrics evaluate(long step) throws Exception {
    return LocalMetrics.NONE;
  }

  /**
   * A digest of every parameter's exact bits, equal on every rank while the replicas agree
   * ({@link ParameterDigest} computes one); compared across ranks every {@code checksum_steps}.
   */
  long parameterChecksum();

  /**
   * This rank's own part of checkpoint {@code step}, called on every rank before a save: what differs between
   * ranks, such as the read position in its own shards (a {@code DataCursor} of them, as JSON). Gathered to
   * rank 0 for {@link #checkpoint}. Empty by default.
   */
  default byte[] rankState(long step) throws Exception {
    return new byte[0];
  }

  /**
   * The files of checkpoint {@code step} (model, optimizer, loop state); called on rank 0 only.
   *
   * @param rankStates every rank's {@link #rankState}, indexed by rank (merge the ranks' data cursors into the
   *     checkpoint's, so each rank finds its shards' positions on resume)
   */
  Map<String, PayloadWriter> checkpoint(long step, List<byte[]> rankStates) throws Exception;

  @Override
  void close();
}
