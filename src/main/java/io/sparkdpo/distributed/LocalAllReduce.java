package io.sparkdpo.distributed;

import java.nio.FloatBuffer;
import java.util.Objects;

/** The group of one: every collective is the identity, so single-worker training runs the same code. */
public final class LocalAllReduce implements AllReduce {

  private boolean closed;

  @Override
  public int rank() {
    return 0;
  }

  @Override
  public int worldSize() {
    return 1;
  }

  @Override
  public void allReduceMean(FloatBuffer data) {
    Objects.requireNonNull(data, "data");
    ensureOpen();
  }

  @Override
  public void allReduceSum(double[] values) {
    Objects.requireNonNull(values, "values");
    ensureOpen();
  }

  @Override
  public byte[][] allGather(byte[] mine) {
    Objects.requireNonNull(mine, "mine");
    ensureOpen();
    return new byte[][] {mine.clone()};
  }

  @Override
  public byte[] broadcast(byte[] fromRankZero) {
    Objects.requireNonNull(fromRankZero, "rank 0 must pass the bytes to broadcast");
    ensureOpen();
    return fromRankZero.clone();
  }

  @Override
  public void broadcast(FloatBuffer data) {
    Objects.requireNonNull(data, "data");
    ensureOpen();
  }

  @Override
  public void barrier() {
    ensureOpen();
  }

  @Override
  public void onRankZero(Work work) throws Exception {
    Objects.requireNonNull(work, "rank 0 must pass its work");
    ensureOpen();
    work.run();
  }

  @Override
  public void close() {
    closed = true;
  }

  private void ensureOpen() {
    if (closed) {
      throw new IllegalStateException("the all-reduce group is closed");
    }
  }
}
