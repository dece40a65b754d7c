package io.sparkdpo.distributed;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;

/**
 * Ring all-reduce of floats to their mean: W-1 reduce-scatter phases, then W-1 all-gather phases.
 *
 * <p>The data is cut into W segments; in phase p rank r sends segment (r - p) mod W and receives
 * segment (r - p - 1) mod W. During reduce-scatter each received chunk is added to the local one;
 * after the last of those phases rank r owns the full sum of segment (r + 1) mod W, divides it by W
 * and the all-gather phases copy that owner's bytes everywhere. Every element is therefore summed
 * and divided exactly once, by one rank, and all ranks end with the same bits.
 *
 * <p>Segments move in chunks, and a chunk is forwarded as soon as it has arrived and been reduced,
 * so all 2(W-1) phases stream through the ring as one pipeline.
 */
final class RingMeanPlan implements RingTransfer {

  private final FloatBuffer data;
  private final int rank;
  private final int worldSize;
  private final int phases;
  private final int chunkFloats;
  private final ChunkStaging staging;

  private int sendPhase;
  private int sendChunk;
  private int recvPhase;
  private int recvChunk;

  /** @param data the floats to reduce, indexed from 0 (a slice of the caller's buffer) */
  RingMeanPlan(FloatBuffer data, int rank, int worldSize, ChunkStaging staging) {
    this.data = data;
    this.rank = rank;
    this.worldSize = worldSize;
    this.phases = 2 * (worldSize - 1);
    this.staging = staging;
    this.chunkFloats = staging.chunkBytes() / Float.BYTES;
    skipFinishedSendPhases();
    skipFinishedReceivePhases();
  }

  @Override
  public ByteBuffer nextToSend() {
    if (sendPhase >= phases || (sendPhase > 0 && !arrived(sendPhase - 1, sendChunk))) {
      return null;
    }
    int segment = Math.floorMod(rank - sendPhase, worldSize);
    int from = segmentStart(segment) + sendChunk * chunkFloats;
    int length = Math.min(chunkFloats, segmentStart(segment + 1) - from);
    ByteBuffer out = staging.fillSend(data.slice(from, length));
    sendChunk++;
    skipFinishedSendPhases();
    return out;
  }

  @Override
  public boolean sendComplete() {
    return sendPhase >= phases;
  }

  @Override
  public ByteBuffer nextToReceive() {
    if (recvPhase >= phases) {
      return null;
    }
    return staging.receiveBuffer(receiveLength() * Float.BYTES);
  }

  @Override
  public void received() {
    int segment = Math.floorMod(rank - recvPhase - 1, worldSize);
    int from = segmentStart(segment) + recvChunk * chunkFloats;
    int length = receiveLength();
    if (recvPhase < worldSize - 1) {
      float[] sum = staging.scratch();
      float[] incoming = staging.received(length);
      data.get(from, sum, 0, length);
      if (recvPhase == worldSize - 2) {
        // This rank completes the sum of this segment: it alone divides, everyone copies its bits.
        for (int i = 0; i < length; i++) {
          sum[i] = (sum[i] + incoming[i]) / worldSize;
        }
      } else {
        for (int i = 0; i < length; i++) {
          sum[i] += incoming[i];
        }
      }
      data.put(from, sum, 0, length);
    } else {
      staging.copyReceivedTo(data.slice(from, length));
    }
    recvChunk++;
    skipFinishedReceivePhases();
  }

  /** Whether chunk {@code chunk} of receive phase {@code phase} has arrived and been reduced. */
  private boolean arrived(int phase, int chunk) {
    return recvPhase > phase || (recvPhase == phase && recvChunk > chunk);
  }

  private int receiveLength() {
    int segment = Math.floorMod(rank - recvPhase - 1, worldSize);
    int from = segmentStart(segment) + recvChunk * chunkFloats;
    return Math.min(chunkFloats, segmentStart(segment + 1) - from);
  }

  private void skipFinishedSendPhases() {
    while (sendPhase < phases
        && sendChunk >= chunkCount(Math.floorMod(rank - sendPhase, worldSize))) {
      sendPhase++;
      sendChunk = 0;
    }
  }

  private void skipFinishedReceivePhases() {
    while (recvPhase < phases
        && recvChunk >= chunkCount(Math.floorMod(rank - recvPhase - 1, worldSize))) {
      recvPhase++;
      recvChunk = 0;
    }
  }

  private int chunkCount(int segment) {
    int length = segmentStart(segment + 1) - segmentStart(segment);
    return (length + chunkFloats - 1) / chunkFloats;
  }

  /** Segments differ in length by at most one float; lengths below W leave some empty. */
  private int segmentStart(int segment) {
    return (int) ((long) segment * data.limit() / worldSize);
  }
}
