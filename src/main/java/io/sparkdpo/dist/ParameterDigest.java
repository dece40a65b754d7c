package io.sparkdpo.dist;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.zip.CRC32C;

/**
 * A fast digest of parameter bytes for comparing replicas: CRC32C (a CPU instruction on x86 and ARM, several
 * GB/s) over the raw bits, in the order given, plus the byte count. Equal parameters give equal digests; one
 * flipped bit changes it. Not a cryptographic hash: replicas are compared for bugs, not attacks.
 *
 * <p>For DJL parameters on the CPU, {@code array.toByteBuffer(true)} aliases the tensor memory, so hashing costs
 * no copy.
 */
public final class ParameterDigest {
  private static final int CHUNK_FLOATS = 1 << 14;
  private final CRC32C crc = new CRC32C();
  private long bytes;
  private ByteBuffer scratch;

  /** Adds the bytes between position and limit; the buffer's position is left unchanged. */
  public ParameterDigest update(ByteBuffer data) {
    ByteBuffer view = data.duplicate();
    bytes += view.remaining();
    crc.update(view);
    return this;
  }

  /** Adds the floats' IEEE bits (little-endian), between position and limit. */
  public ParameterDigest update(FloatBuffer data) {
    FloatBuffer view = data.duplicate();
    ByteBuffer chunk = scratch();
    while (view.hasRemaining()) {
      chunk.clear();
      int n = Math.min(view.remaining(), CHUNK_FLOATS);
      for (int i = 0; i < n; i++) {
        chunk.putFloat(view.get());
      }
      update(chunk.flip());
    }
    return this;
  }

  public ParameterDigest update(float[] data) {
    return update(FloatBuffer.wrap(data));
  }

  /** CRC32C in the high 32 bits, the byte count (mod 2^32) in the low 32 bits. */
  public long value() {
    return (crc.getValue() << 32) | (bytes & 0xFFFF_FFFFL);
  }

  /** The digest of one array. */
  public static long of(float[] data) {
    return new ParameterDigest().update(data).value();
  }

  private ByteBuffer scratch() {
    if (scratch == null) {
      scratch = ByteBuffer.allocate(CHUNK_FLOATS * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    }
    return scratch;
  }
}
