package io.sparkdpo.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.io.Storage;
import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format (8-byte little-endian header length, a JSON header of dtype, shape and data
 * offsets per tensor, then the raw little-endian data), read and written by streaming through one reusable
 * chunk: a reader pulls each tensor's bytes, converted to the dtype it asks for, straight into its own
 * (native) memory, so neither a file nor a tensor is ever staged in Java. F32, F16 and BF16 are read and
 * written, converting between them on the way (rounding to nearest even, as torch). Every structural problem
 * is reported with the file and, where there is one, the tensor.
 */
public final class Safetensors {
  /** The format's own limit on the header, which also bounds what a corrupt length field can make us allocate. */
  static final long MAX_HEADER_BYTES = 100_000_000L;
  /** Bytes moved per read or write call: bounds the Java memory of streaming whatever the tensor size. */
  static final int CHUNK_BYTES = 4 << 20;
  private static final ObjectMapper COMPACT = new ObjectMapper();

  public enum Dtype {
    F32(4, "float32"), F16(2, "float16"), BF16(2, "bfloat16");

    public final int bytes;
    /** The name transformers writes as config.json's {@code torch_dtype}. */
    public final String torchName;

    Dtype(int bytes, String torchName) {
      this.bytes = bytes;
      this.torchName = torchName;
    }
  }

  /** One tensor's header entry; {@code begin}/{@code end} are byte offsets into the data section. */
  public record Entry(String name, Dtype dtype, long[] shape, long begin, long end) {
    public long numel() {
      long n = 1;
      for (long s : shape) {
        n *= s;
      }
      return n;
    }
  }

  /** A parsed header: entries in data order, the {@code __metadata__} strings, where the data starts. */
  public record Header(List<Entry> entries, Map<String, String> metadata, long dataStart) {}

  /**
   * A tensor to write: its name, shape, the dtype its values are held in, and where they come from, asked for
   * only when the tensor is written so a model is never copied whole.
   */
  public record Tensor(String name, long[] shape, Dtype dtype, Slices data) {
    /** A tensor of float32 values held in one buffer (in the buffer's declared byte order). */
    public static Tensor of(String name, long[] shape, ByteBuffer float32) {
      return new Tensor(name, shape, Dtype.F32, slice -> slice.accept(float32.duplicate().order(float32.order())));
    }
  }

  /**
   * Hands a tensor's values over in order, as consecutive buffers (each under 2 GiB, whole elements, in the
   * buffer's declared byte order, read from position to limit): a tensor of any size streams from native memory.
   */
  @FunctionalInterface
  public interface Slices {
    void forEach(java.util.function.Consumer<ByteBuffer> slice);
  }

  /** Receives each tensor of a file, in file order, as float32 values in a direct native-order buffer. */
  @FunctionalInterface
  public interface Sink {
    void accept(Entry entry, ByteBuffer float32);
  }

  /**
   * Receives each tensor of a file, in file order, with a reader of its data. What the sink leaves unread is
   * skipped (and still hashed) after it returns.
   */
  @FunctionalInterface
  public interface StreamSink {
    void accept(Entry entry, TensorReader data);
  }

  /** The data of the tensor being streamed, read front to back. */
  public interface TensorReader {
    /**
     * Fills {@code dst} from its position to its limit with the tensor's next values converted to {@code as}
     * (little-endian when {@code dst} is, else in {@code dst}'s order); {@code dst}'s remaining bytes must be a
     * whole number of {@code as} elements, no more than the tensor has left.
     */
    void read(ByteBuffer dst, Dtype as);
  }

  private Safetensors() {}

  /**
   * Streams every tensor of {@code file} into {@code sink}, converted to float32, one direct buffer per tensor
   * (for small tensors and tests; models stream through {@link #stream}).
   *
   * @return the sha256 of the whole file, computed on the way
   */
  public static byte[] read(Storage storage, String file, Sink sink) {
    return stream(storage, file, (entry, data) -> {
      ByteBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(entry.numel() * 4)).order(ByteOrder.nativeOrder());
      data.read(out, Dtype.F32);
      sink.accept(entry, out.flip());
    });
  }

  /**
   * Streams every tensor of {@code file} into {@code sink}, which pulls each tensor's bytes where it wants them.
   * Java memory stays one chunk ({@value #CHUNK_BYTES} bytes) whatever the file or tensor size.
   *
   * @return the sha256 of the whole file, computed on the way
   */
  public static byte[] stream(Storage storage, String file, StreamSink sink) {
    long length;
    try {
      length = storage.status(file).getLen();
    } catch (FileNotFoundException e) {
      throw new IllegalArgumentException(file + ": safetensors file not found", e);
    }
    MessageDigest sha = sha256();
    try (InputStream raw = storage.open(file); InputStream in = new DigestInputStream(raw, sha)) {
      Header header = readHeader(in, file, length);
      StreamReader reader = new StreamReader(in, file, header.dataStart());
      for (Entry e : header.entries()) {
        reader.begin(e);
        sink.accept(e, reader);
        reader.skipRest();
      }
      in.transferTo(OutputStream.nullOutputStream());
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read: " + e.getMessage(), e);
    }
    return sha.digest();
  }

  /** Reads one tensor after another from a stream positioned at the data section, through one reused chunk. */
  private static final class StreamReader implements TensorReader {
    private final InputStream in;
    private final String file;
    private final byte[] chunk = new byte[CHUNK_BYTES];
    private long position;
    private Entry entry;
    private long remaining;

    StreamReader(InputStream in, String file, long position) {
      this.in = in;
      this.file = file;
      this.position = position;
    }

    void begin(Entry e) {
      entry = e;
      remaining = e.end() - e.begin();
    }

    @Override
    public void read(ByteBuffer dst, Dtype as) {
      if (dst.remaining() % as.bytes != 0) {
        throw new IllegalArgumentException(file + ": tensor " + entry.name() + ": " + dst.remaining()
            + " bytes is not a whole number of " + as + " elements");
      }
      long need = (long) (dst.remaining() / as.bytes) * entry.dtype().bytes;
      if (need > remaining) {
        throw new IllegalArgumentException(file + ": tensor " + entry.name() + ": asked for " + need
            + " more bytes but only " + remaining + " are left");
      }
      try {
        // Chunks are a multiple of every dtype size and each tensor starts a chunk: no element straddles two.
        while (need > 0) {
          int n = (int) Math.min(chunk.length, need);
          readFully(in, chunk, n, file, entry, position);
          convert(ByteBuffer.wrap(chunk, 0, n).order(ByteOrder.LITTLE_ENDIAN), entry.dtype(), dst, as);
          need -= n;
          remaining -= n;
          position += n;
        }
      } catch (IOException e) {
        throw new UncheckedIOException(file + ": cannot read: " + e.getMessage(), e);
      }
    }

    void skipRest() throws IOException {
      while (remaining > 0) {
        int n = (int) Math.min(chunk.length, remaining);
        readFully(in, chunk, n, file, entry, position);
        remaining -= n;
        position += n;
      }
    }
  }

  /** Reads and validates only the header (the stream is left at the start of the data section). */
  public static Header readHeader(InputStream in, String file, long fileLength) throws IOException {
    if (fileLength < 8) {
      throw new IllegalArgumentException(file + ": truncated safetensors file (" + fileLength
          + " bytes, fewer than the 8-byte header length)");
    }
    byte[] lengthBytes = in.readNBytes(8);
    long headerLength = ByteBuffer.wrap(lengthBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
    if (headerLength <= 0 || headerLength > MAX_HEADER_BYTES) {
      throw new IllegalArgumentException(file + ": corrupt safetensors header length " + headerLength);
    }
    if (8 + headerLength > fileLength) {
      throw new IllegalArgumentException(file + ": truncated safetensors file: the header needs "
          + (8 + headerLength) + " bytes but the file has " + fileLength);
    }
    byte[] headerBytes = in.readNBytes((int) headerLength);
    if (headerBytes.length != headerLength) {
      throw new IllegalArgumentException(file + ": truncated safetensors header");
    }
    JsonNode root;
    try {
      root = COMPACT.readTree(new String(headerBytes, StandardCharsets.UTF_8));
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(file + ": corrupt safetensors header (not JSON: "
          + e.getOriginalMessage() + ")", e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(file + ": corrupt safetensors header (not a JSON object)");
    }
    List<Entry> entries = new ArrayList<>();
    Map<String, String> metadata = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      if (f.getKey().equals("__metadata__")) {
        f.getValue().fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
      } else {
        entries.add(entry(file, f.getKey(), f.getValue()));
      }
    }
    entries.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
    long dataLength = fileLength - 8 - headerLength;
    long expected = 0;
    for (Entry e : entries) {
      if (e.begin() != expected) {
        throw new IllegalArgumentException(file + ": corrupt safetensors header: tensor " + e.name()
            + " starts at byte " + e.begin() + " of the data section, expected " + expected
            + " (tensors must tile the data without gaps or overlaps)");
      }
      if (e.end() > dataLength) {
        throw new IllegalArgumentException(file + ": truncated safetensors file: tensor " + e.name()
            + " needs bytes [" + e.begin() + ", " + e.end() + ") of the data section but only " + dataLength
            + " are present");
      }
      expected = e.end();
    }
    if (expected != dataLength) {
      throw new IllegalArgumentException(file + ": corrupt safetensors file: " + (dataLength - expected)
          + " bytes follow the last tensor");
    }
    return new Header(List.copyOf(entries), metadata, 8 + headerLength);
  }

  private static Entry entry(String file, String name, JsonNode n) {
    String where = file + ": tensor " + name + ": ";
    if (!n.isObject() || !n.has("dtype") || !n.has("shape") || !n.has("data_offsets")) {
      throw new IllegalArgumentException(where + "header entry needs dtype, shape and data_offsets (got " + n + ")");
    }
    Dtype dtype;
    try {
      dtype = Dtype.valueOf(n.get("dtype").asText());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(where + "dtype " + n.get("dtype").asText()
          + " is not supported (F32, F16 and BF16 are)");
    }
    JsonNode shapeNode = n.get("shape");
    JsonNode offsets = n.get("data_offsets");
    if (!shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
      throw new IllegalArgumentException(where + "malformed shape or data_offsets (got " + n + ")");
    }
    long[] shape = new long[shapeNode.size()];
    for (int i = 0; i < shape.length; i++) {
      if (!shapeNode.get(i).canConvertToLong() || shapeNode.get(i).asLong() < 0) {
        throw new IllegalArgumentException(where + "malformed shape " + shapeNode);
      }
      shape[i] = shapeNode.get(i).asLong();
    }
    long begin = offsets.get(0).asLong();
    long end = offsets.get(1).asLong();
    Entry e = new Entry(name, dtype, shape, begin, end);
    if (begin < 0 || end < begin || end - begin != e.numel() * dtype.bytes) {
      throw new IllegalArgumentException(where + "data_offsets [" + begin + ", " + end + ") do not hold shape "
          + Arrays.toString(shape) + " of " + dtype);
    }
    return e;
  }

  private static void readFully(InputStream in, byte[] buf, int n, String file, Entry e, long position)
      throws IOException {
    int got = in.readNBytes(buf, 0, n);
    if (got != n) {
      throw new EOFException(file + ": truncated safetensors file: tensor " + e.name() + " ends early (file ends at "
          + (position + got) + ")");
    }
  }

  /**
   * Converts every element of {@code src} (dtype {@code from}, in src's order) into {@code dst} (dtype {@code to},
   * in dst's order), advancing both. Same dtype and byte order: one bulk copy.
   */
  static void convert(ByteBuffer src, Dtype from, ByteBuffer dst, Dtype to) {
    if (from == to && src.order() == dst.order()) {
      dst.put(src);
      return;
    }
    int n = src.remaining() / from.bytes;
    int s = src.position();
    int d = dst.position();
    if (dst.remaining() < (long) n * to.bytes) {
      throw new java.nio.BufferOverflowException();
    }
    for (int i = 0; i < n; i++) {
      float v = switch (from) {
        case F32 -> src.getFloat(s + 4 * i);
        case BF16 -> bf16ToFloat(src.getShort(s + 2 * i));
        case F16 -> f16ToFloat(src.getShort(s + 2 * i));
      };
      switch (to) {
        case F32 -> dst.putFloat(d + 4 * i, v);
        case BF16 -> dst.putShort(d + 2 * i, floatToBf16(v));
        case F16 -> dst.putShort(d + 2 * i, floatToF16(v));
      }
    }
    src.position(s + n * from.bytes);
    dst.position(d + n * to.bytes);
  }

  /**
   * Writes {@code tensors} in the given order as {@code dtype}, with {@code __metadata__ {"format": "pt"}}
   * (transformers refuses files without it). The header is space-padded to 8 bytes as the reference writer does.
   * Each tensor streams from its own memory through one chunk, converted on the way.
   */
  public static void write(OutputStream out, List<Tensor> tensors, Dtype dtype) throws IOException {
    out.write(header(tensors, dtype));
    ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    for (Tensor t : tensors) {
      long[] written = {0};
      t.data().forEach(slice -> {
        ByteBuffer src = slice.duplicate().order(slice.order());
        if (src.remaining() % t.dtype().bytes != 0) {
          throw new IllegalArgumentException("tensor " + t.name() + ": a slice of " + src.remaining()
              + " bytes is not a whole number of " + t.dtype() + " elements");
        }
        // As many source elements per round as fill the chunk in the file's dtype.
        int perRound = CHUNK_BYTES / Math.max(dtype.bytes, t.dtype().bytes);
        while (src.hasRemaining()) {
          int elements = Math.min(perRound, src.remaining() / t.dtype().bytes);
          ByteBuffer part = src.slice(src.position(), elements * t.dtype().bytes).order(src.order());
          src.position(src.position() + elements * t.dtype().bytes);
          chunk.clear();
          convert(part, t.dtype(), chunk, dtype);
          try {
            out.write(chunk.array(), 0, chunk.position());
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
          written[0] += elements;
        }
      });
      if (written[0] != numel(t.shape())) {
        throw new IllegalArgumentException("tensor " + t.name() + ": " + written[0] + " values of data for shape "
            + Arrays.toString(t.shape()));
      }
    }
  }

  /** Byte size of the file {@link #write} produces. */
  public static long fileSize(List<Tensor> tensors, Dtype dtype) {
    long data = 0;
    for (Tensor t : tensors) {
      data += numel(t.shape()) * dtype.bytes;
    }
    return header(tensors, dtype).length + data;
  }

  private static byte[] header(List<Tensor> tensors, Dtype dtype) {
    ObjectNode root = JsonNodeFactory.instance.objectNode();
    root.putObject("__metadata__").put("format", "pt");
    long offset = 0;
    for (Tensor t : tensors) {
      long n = numel(t.shape());
      ObjectNode e = root.putObject(t.name());
      e.put("dtype", dtype.name());
      var shape = e.putArray("shape");
      for (long s : t.shape()) {
        shape.add(s);
      }
      e.putArray("data_offsets").add(offset).add(offset + n * dtype.bytes);
      offset += n * dtype.bytes;
    }
    byte[] json;
    try {
      json = COMPACT.writeValueAsBytes(root);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    int padded = (json.length + 7) / 8 * 8;
    ByteBuffer b = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(padded).put(json);
    while (b.hasRemaining()) {
      b.put((byte) ' ');
    }
    return b.array();
  }

  static long numel(long[] shape) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    return n;
  }

  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /** Round to nearest, ties to even, as torch's {@code .to(torch.bfloat16)} does; NaN stays NaN. */
  public static short floatToBf16(float v) {
    int bits = Float.floatToRawIntBits(v);
    if (Float.isNaN(v)) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int rounding = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  /**
   * float -> IEEE half, round to nearest, ties to even, as torch's {@code .to(torch.float16)}: overflow gives
   * infinity, tiny values become subnormals or signed zero, NaN stays NaN.
   */
  public static short floatToF16(float v) {
    int bits = Float.floatToRawIntBits(v);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xFF;
    int mant = bits & 0x7FFFFF;
    if (exp == 0xFF) {
      return (short) (sign | 0x7C00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
    }
    int e = exp - 127 + 15;
    if (e >= 0x1F) {
      return (short) (sign | 0x7C00);
    }
    if (e <= 0) {
      if (e < -10) {
        return (short) sign; // below half the smallest subnormal: rounds to zero
      }
      // Subnormal: shift the full significand (implicit 1 included) right, rounding to nearest even.
      int m = mant | 0x800000;
      int shift = 14 - e;
      int half = m >>> shift;
      int rest = m & ((1 << shift) - 1);
      int halfway = 1 << (shift - 1);
      if (rest > halfway || (rest == halfway && (half & 1) == 1)) {
        half++;
      }
      return (short) (sign | half);
    }
    int half = (e << 10) | (mant >>> 13);
    int rest = mant & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1) == 1)) {
      half++; // may carry into the exponent, up to infinity: both correct
    }
    return (short) (sign | half);
  }

  /** IEEE half -> float, including subnormals, infinities and NaN. */
  public static float f16ToFloat(short half) {
    int h = half & 0xFFFF;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1F;
    int mant = h & 0x3FF;
    if (exp == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
    }
    if (exp == 0) {
      float f = mant * 0x1p-24f; // subnormal: mant * 2^-24, exact in float
      return sign == 0 ? f : -f;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
