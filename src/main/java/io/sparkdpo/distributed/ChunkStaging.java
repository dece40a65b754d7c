package io.sparkdpo.distributed;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * The per-group buffers one chunk passes through: a direct send buffer and a direct receive buffer
 * (little-endian on the wire whatever the host order), plus two float arrays for the reduction,
 * where the JIT vectorises the add. Allocated once per group and reused by every collective.
 */
final class ChunkStaging {

  private final int chunkBytes;
  private final ByteBuffer send;
  private final FloatBuffer sendFloats;
  private final ByteBuffer receive;
  private final FloatBuffer receiveFloats;
  private final float[] scratch;
  private final float[] incoming;

  ChunkStaging(int chunkBytes) {
    this.chunkBytes = chunkBytes;
    this.send = ByteBuffer.allocateDirect(chunkBytes).order(ByteOrder.LITTLE_ENDIAN);
    this.sendFloats = send.asFloatBuffer();
    this.receive = ByteBuffer.allocateDirect(chunkBytes).order(ByteOrder.LITTLE_ENDIAN);
    this.receiveFloats = receive.asFloatBuffer();
    this.scratch = new float[chunkBytes / Float.BYTES];
    this.incoming = new float[chunkBytes / Float.BYTES];
  }

  int chunkBytes() {
    return chunkBytes;
  }

  /** Copies {@code floats} (position to limit, at most a chunk) into the send buffer. */
  ByteBuffer fillSend(FloatBuffer floats) {
    int n = floats.remaining();
    sendFloats.clear();
    sendFloats.put(floats);
    send.clear().limit(n * Float.BYTES);
    return send;
  }

  /** Copies {@code length} bytes of {@code bytes} from {@code offset} into the send buffer. */
  ByteBuffer fillSend(byte[] bytes, int offset, int length) {
    send.clear();
    send.put(bytes, offset, length).flip();
    return send;
  }

  /** The receive buffer, cleared and limited to {@code bytes}. */
  ByteBuffer receiveBuffer(int bytes) {
    receive.clear().limit(bytes);
    return receive;
  }

  /** The first {@code length} received floats, in an array reused by the next call. */
  float[] received(int length) {
    receiveFloats.get(0, incoming, 0, length);
    return incoming;
  }

  /** Copies the received floats into {@code target} (position to limit). */
  void copyReceivedTo(FloatBuffer target) {
    target.put(receiveFloats.slice(0, target.remaining()));
  }

  /** Copies the {@code length} received bytes into {@code target} at {@code offset}. */
  void copyReceivedTo(byte[] target, int offset, int length) {
    receive.get(0, target, offset, length);
  }

  /** A chunk-sized float array for the running sum, reused by the next call. */
  float[] scratch() {
    return scratch;
  }
}
