package io.sparkdpo.dist;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Ring all-gather of small byte blocks of any length: in step s rank r forwards the block of rank
 * (r - s) mod W, which it received in the step before, as a length-prefixed frame. W-1 steps;
 * blocks are not chunked, so this is for metrics, checksums and barriers, not for gradients.
 */
final class RingGatherPlan implements RingTransfer {

  private final byte[][] blocks;
  private final int rank;
  private final int worldSize;
  private final ByteBuffer lengthIn = ByteBuffer.allocate(Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
  private ByteBuffer bodyIn;
  private int sendStep;
  private int recvStep;

  RingGatherPlan(byte[] mine, int rank, int worldSize) {
    this.blocks = new byte[worldSize][];
    this.blocks[rank] = mine;
    this.rank = rank;
    this.worldSize = worldSize;
  }

  /** Every rank's block, indexed by rank, once the transfer is complete. */
  byte[][] blocks() {
    return blocks;
  }

  @Override
  public ByteBuffer nextToSend() {
    if (sendComplete() || recvStep < sendStep) {
      return null;
    }
    byte[] block = blocks[Math.floorMod(rank - sendStep, worldSize)];
    sendStep++;
    return ByteBuffer.allocate(Integer.BYTES + block.length).order(ByteOrder.LITTLE_ENDIAN)
        .putInt(block.length).put(block).flip();
  }

  @Override
  public boolean sendComplete() {
    return sendStep >= worldSize - 1;
  }

  @Override
  public ByteBuffer nextToReceive() {
    if (recvStep >= worldSize - 1) {
      return null;
    }
    if (bodyIn != null) {
      return bodyIn;
    }
    return lengthIn.clear();
  }

  @Override
  public void received() {
    if (bodyIn == null) {
      int length = lengthIn.flip().getInt();
      if (length < 0) {
        throw new IllegalStateException("protocol error: all-gather frame of length " + length);
      }
      bodyIn = ByteBuffer.allocate(length);
      return;
    }
    blocks[Math.floorMod(rank - recvStep - 1, worldSize)] = bodyIn.array();
    bodyIn = null;
    recvStep++;
  }
}
