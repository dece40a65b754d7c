package io.sparkdpo.distributed;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * Rank 0's data down the ring as a chunked pipeline: each rank stores a chunk as it arrives and
 * forwards it at once to its right, except the last rank, whose right neighbour is rank 0. Costs one
 * pass of the data over the slowest link plus W-2 chunk latencies.
 */
final class RingBroadcastPlan implements RingTransfer {

  /** What is broadcast: floats or bytes, addressed in bytes. */
  interface Region {
    long byteLength();

    ByteBuffer fillSend(ChunkStaging staging, long offset, int length);

    void storeReceived(ChunkStaging staging, long offset, int length);

    static Region of(FloatBuffer floats) {
      return new Region() {
        @Override
        public long byteLength() {
          return (long) floats.limit() * Float.BYTES;
        }

        @Override
        public ByteBuffer fillSend(ChunkStaging staging, long offset, int length) {
          return staging.fillSend(floats.slice((int) (offset / Float.BYTES), length / Float.BYTES));
        }

        @Override
        public void storeReceived(ChunkStaging staging, long offset, int length) {
          staging.copyReceivedTo(
              floats.slice((int) (offset / Float.BYTES), length / Float.BYTES));
        }
      };
    }

    /**
     * The length of a byte broadcast (4 bytes, little-endian), refused on arrival when it is negative or above
     * {@link RingOptions#MAX_MESSAGE_BYTES}, before any rank allocates it.
     */
    static Region announcedLength(byte[] length) {
      Region bytes = of(length);
      return new Region() {
        @Override
        public long byteLength() {
          return bytes.byteLength();
        }

        @Override
        public ByteBuffer fillSend(ChunkStaging staging, long offset, int n) {
          return bytes.fillSend(staging, offset, n);
        }

        @Override
        public void storeReceived(ChunkStaging staging, long offset, int n) {
          bytes.storeReceived(staging, offset, n);
          int announced = ByteBuffer.wrap(length).order(ByteOrder.LITTLE_ENDIAN).getInt();
          if (announced < 0 || announced > RingOptions.MAX_MESSAGE_BYTES) {
            throw new Refused("a broadcast of " + announced + " bytes, outside the limit of 0 to "
                + RingOptions.MAX_MESSAGE_BYTES + " bytes");
          }
        }
      };
    }

    static Region of(byte[] bytes) {
      return new Region() {
        @Override
        public long byteLength() {
          return bytes.length;
        }

        @Override
        public ByteBuffer fillSend(ChunkStaging staging, long offset, int length) {
          return staging.fillSend(bytes, (int) offset, length);
        }

        @Override
        public void storeReceived(ChunkStaging staging, long offset, int length) {
          staging.copyReceivedTo(bytes, (int) offset, length);
        }
      };
    }
  }

  private final Region region;
  private final ChunkStaging staging;
  private final boolean receives;
  private final boolean forwards;
  private final int chunks;
  private int sent;
  private int arrived;

  RingBroadcastPlan(Region region, int rank, int worldSize, ChunkStaging staging) {
    this.region = region;
    this.staging = staging;
    this.receives = rank != 0;
    this.forwards = rank != worldSize - 1;
    this.chunks = (int) ((region.byteLength() + staging.chunkBytes() - 1) / staging.chunkBytes());
  }

  @Override
  public ByteBuffer nextToSend() {
    if (sendComplete() || (receives && arrived <= sent)) {
      return null;
    }
    ByteBuffer out = region.fillSend(staging, offset(sent), length(sent));
    sent++;
    return out;
  }

  @Override
  public boolean sendComplete() {
    return !forwards || sent >= chunks;
  }

  @Override
  public ByteBuffer nextToReceive() {
    if (!receives || arrived >= chunks) {
      return null;
    }
    return staging.receiveBuffer(length(arrived));
  }

  @Override
  public void received() {
    region.storeReceived(staging, offset(arrived), length(arrived));
    arrived++;
  }

  private long offset(int chunk) {
    return (long) chunk * staging.chunkBytes();
  }

  private int length(int chunk) {
    return (int) Math.min(staging.chunkBytes(), region.byteLength() - offset(chunk));
  }
}
