package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.List;
import java.util.Map;

/**
 * The loss a {@link TrainingSession} optimises, over examples of type {@code E}: DPO over preference pairs
 * ({@link DpoObjective}), the causal-LM loss over token sequences ({@link SftObjective}). Results are summable
 * statistics (host doubles), so micro-batches, replicas and evaluation batches combine exactly: add, then
 * {@link #metrics} once.
 */
public interface Objective<E> extends AutoCloseable {

  /** A micro-batch's forward pass in training mode. */
  record Forward(NDArray lossSum, double lossValue, double[] stats, long items) {}

  /** The example's stable id, named when a step is refused. */
  String id(E example);

  /** Tokens a training step runs through the policy for this example (throughput only). */
  int tokens(E example);

  /**
   * Forward pass with the autograd graph: {@code lossSum} is the loss summed over the micro-batch's items (pairs or
   * target tokens), to back-propagate; the gradient is scaled to the global-batch mean afterwards. Every array
   * lives in {@code scope}.
   */
  Forward forward(NDManager scope, List<E> batch);

  /** The same statistics without a graph (evaluation). */
  double[] evaluate(NDManager scope, List<E> batch);

  /** Statistics of no examples: the identity of adding. */
  double[] emptyStats();

  /** How many items (the weight of the means) the statistics cover. */
  long items(double[] stats);

  /** Means with TRL's names, unprefixed; with no items every name is present with value 0. */
  Map<String, Double> metrics(double[] stats);

  /**
   * Files of the objective's own training state for a checkpoint, beside the model and optimizer (bco_pair's running
   * mean); none by default.
   */
  default Map<String, PayloadWriter> checkpointFiles() {
    return Map.of();
  }

  /** On a resume: takes back what {@link #checkpointFiles} wrote into {@code checkpoint}. */
  default void restore(Checkpoint checkpoint) {}

  /** Frees what the objective holds besides the policy (a frozen reference model). */
  @Override
  void close();
}
