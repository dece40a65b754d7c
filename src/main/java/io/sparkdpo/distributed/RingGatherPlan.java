package io.sparkdpo.distributed;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Ring all-gather of small byte blocks of any length: in step s rank r forwards the block of rank
 * (r - s) mod W, which it received in the step before, as two frames: its length, then its bytes. W-1 steps;
 * blocks are not chunked, so this is for metrics, checksums and barriers, not for gradients.
 *
 * <p>A length from a peer is checked before the block is allocated: it must be the agreed one when ranks know it
 * (an {@code allReduceSum}), and the blocks together may not exceed {@link RingOptions#MAX_MESSAGE_BYTES}.
 */
final class RingGatherPlan implements RingTransfer {

  private final byte[][] blocks;
  private final int rank;
  private final int worldSize;
  private final int expectedLength;
  private final ByteBuffer lengthOut = ByteBuffer.allocate(Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
  private final ByteBuffer lengthIn = ByteBuffer.allocate(Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
  private ByteBuffer bodyOut;
  private ByteBuffer bodyIn;
  private long receivedBytes;
  private int sendStep;
  private int recvStep;

  /** @param expectedLength every block's length when the ranks agree on it, else -1 */
  RingGatherPlan(byte[] mine, int rank, int worldSize, int expectedLength) {
    this.blocks = new byte[worldSize][];
    this.blocks[rank] = mine;
    this.rank = rank;
    this.worldSize = worldSize;
    this.expectedLength = expectedLength;
    this.receivedBytes = mine.length;
  }

  /** Every rank's block, indexed by rank, once the transfer is complete. */
  byte[][] blocks() {
    return blocks;
  }

  @Override
  public ByteBuffer nextToSend() {
    if (bodyOut != null) {
      ByteBuffer body = bodyOut;
      bodyOut = null;
      sendStep++;
      return body;
    }
    if (sendComplete() || recvStep < sendStep) {
      return null;
    }
    byte[] block = blocks[Math.floorMod(rank - sendStep, worldSize)];
    bodyOut = ByteBuffer.wrap(block);
    return lengthOut.clear().putInt(block.length).flip();
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
      if (expectedLength >= 0 && length != expectedLength) {
        throw new Refused("a block of " + length + " bytes where every rank's is " + expectedLength);
      }
      if (length < 0 || receivedBytes + length > RingOptions.MAX_MESSAGE_BYTES) {
        throw new Refused("a block of " + length + " bytes, which with the " + receivedBytes
            + " bytes gathered so far exceeds the all-gather limit of " + RingOptions.MAX_MESSAGE_BYTES + " bytes");
      }
      receivedBytes += length;
      bodyIn = ByteBuffer.allocate(length);
      return;
    }
    blocks[Math.floorMod(rank - recvStep - 1, worldSize)] = bodyIn.array();
    bodyIn = null;
    recvStep++;
  }
}
