package io.sparkdpo.train;

import java.nio.FloatBuffer;

/**
 * Averages a flat gradient buffer across training replicas, in place. One replica: nothing to do. The
 * distributed implementation (TCP ring) lives in {@code io.sparkdpo.distributed}; its {@code AllReduce} has these two
 * methods, so it can implement this interface directly.
 */
public interface GradientReducer {
  /** The reducer of a single replica. */
  GradientReducer SINGLE = new GradientReducer() {
    @Override
    public int worldSize() {
      return 1;
    }

    @Override
    public void allReduceMean(FloatBuffer direct) {
      // one replica: its gradient is the mean
    }
  };

  int worldSize();

  /** Replaces the buffer's contents by the element-wise mean over all replicas. */
  void allReduceMean(FloatBuffer direct);
}
