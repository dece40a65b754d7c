package io.sparkdpo.distributed;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * The collectives one data-parallel training step needs, over a fixed group of {@link #worldSize()}
 * ranks. Every rank calls the same collectives in the same order with the same lengths; a rank that
 * does otherwise gets a {@link CollectiveException} instead of corrupted data.
 *
 * <p>Results are bitwise identical on every rank (replicas that start equal stay equal). Not
 * thread-safe: one thread drives a group. After a {@link CollectiveException} the group is broken
 * and every further call fails; close it and rebuild the group.
 */
public interface AllReduce extends AutoCloseable {

  /** This participant's index, 0 to {@code worldSize() - 1}. */
  int rank();

  int worldSize();

  /**
   * Replaces the floats between {@code data.position()} and {@code data.limit()} with their mean
   * over all ranks. Position and limit are left unchanged. Meant for a direct buffer that aliases
   * the gradient memory (any {@link FloatBuffer} works; direct ones avoid a copy).
   */
  void allReduceMean(FloatBuffer data);

  /**
   * Replaces {@code values} with their element-wise sum over all ranks, added in rank order so
   * every rank holds the same bits. For a handful of per-step metrics, not for gradients.
   */
  void allReduceSum(double[] values);

  /** Every rank's {@code mine}, indexed by rank; lengths may differ between ranks. */
  byte[][] allGather(byte[] mine);

  /**
   * Rank 0's bytes, on every rank. Other ranks' arguments are ignored (pass {@code null}), so the
   * length need not be known in advance: a stop signal, a small config, a checkpoint step.
   */
  byte[] broadcast(byte[] fromRankZero);

  /**
   * Overwrites the floats between position and limit with rank 0's values. Every rank passes the
   * same length. For initial parameters, where every replica must start from the same bits.
   */
  void broadcast(FloatBuffer data);

  /** Returns once every rank has entered the barrier. */
  void barrier();

  /** Work one rank does alone while the others wait: verifying or writing a checkpoint. */
  @FunctionalInterface
  interface Work {
    void run() throws Exception;
  }

  /**
   * Rank 0 runs {@code work} while every other rank waits; no rank returns before the work is done.
   * The wait is not held to the peer timeout: rank 0 sends keepalives while it works, and the others
   * wait as long as they keep arriving, up to the group's rank-0 timeout. A rank 0 that goes silent
   * (frozen, or its host lost) is still noticed within the peer timeout, and one that dies at once.
   * If the work throws on rank 0, rank 0 rethrows it and the others fail with a
   * {@link CollectiveException}. Other ranks' {@code work} is ignored (pass {@code null}).
   */
  void onRankZero(Work work) throws Exception;

  /** Every rank's {@code value} (a parameter checksum, a step counter), indexed by rank. */
  default long[] allGatherLong(long value) {
    byte[][] all = allGather(ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN)
        .putLong(value).array());
    long[] out = new long[all.length];
    for (int r = 0; r < all.length; r++) {
      out[r] = ByteBuffer.wrap(all[r]).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }
    return out;
  }

  /** Releases the connections; idempotent, never throws. */
  @Override
  void close();
}
