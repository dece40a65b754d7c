package io.sparkdpo.distributed;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import io.sparkdpo.train.GradMode;
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
 * no copy. DJL's buffers are int-indexed, so an array over {@link #sliceBytes} is hashed through slices of a flat
 * view, in order: the digest is the same as of one buffer holding it all.
 */
public final class ParameterDigest {
  private static final int CHUNK_FLOATS = 1 << 14;
  /** Largest slice of an array hashed through one buffer; package-private so tests can force many slices. */
  static long sliceBytes = 1L << 30;
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

  /** Adds an array's raw bytes (native order, as stored), through slices of at most {@link #sliceBytes}. */
  public ParameterDigest update(NDArray array) {
    long elementBytes = array.getDataType().getNumOfBytes();
    if (array.size() * elementBytes <= sliceBytes) {
      return update(array.toByteBuffer(true));
    }
    long perSlice = Math.max(1, sliceBytes / elementBytes);
    try (GradMode ignored = GradMode.off(); NDArray flat = array.reshape(-1)) {
      for (long at = 0; at < array.size(); at += perSlice) {
        try (NDArray slice = flat.get(new NDIndex(at + ":" + Math.min(array.size(), at + perSlice)))) {
          update(slice.toByteBuffer(true));
        }
      }
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
