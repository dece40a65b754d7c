package io.sparkdpo.train;

import java.nio.FloatBuffer;

/**
 * The collectives a trainer needs beyond averaging gradients, for a loop whose replicas must share data each step
 * (PPO: every rank samples part of the rollout batch, and all ranks need all of it): this rank, a sum of a few
 * doubles in rank order, and an all-gather. One replica: itself. The distributed implementation is the TCP ring's
 * {@code AllReduce} ({@code WorkerContext.replicaGroup()}); results are the same bits on every rank.
 */
public interface ReplicaGroup extends GradientReducer {
  /** The group of a single replica. */
  ReplicaGroup SINGLE = new ReplicaGroup() {
    @Override
    public int rank() {
      return 0;
    }

    @Override
    public int worldSize() {
      return 1;
    }

    @Override
    public void allReduceMean(FloatBuffer direct) {
      // one replica: its gradient is the mean
    }

    @Override
    public void allReduceSum(double[] values) {
      // one replica: its values are the sum
    }

    @Override
    public byte[][] allGather(byte[] mine) {
      return new byte[][] {mine};
    }
  };

  int rank();

  /** Replaces {@code values} with their element-wise sum over all replicas, added in rank order. */
  void allReduceSum(double[] values);

  /** Every replica's {@code mine}, indexed by rank; lengths may differ. */
  byte[][] allGather(byte[] mine);
}
