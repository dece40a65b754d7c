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
import java.util.function.Supplier;

/**
 * The safetensors format (8-byte little-endian header length, a JSON header of dtype, shape and data
 * offsets per tensor, then the raw little-endian data), read by streaming so a multi-gigabyte file never
 * sits in memory twice. F32, F16 and BF16 are read and always handed out as float32; F32 and BF16 are
 * written. Every structural problem is reported with the file and, where there is one, the tensor.
 */
public final class Safetensors {
  /** The format's own limit on the header, which also bounds what a corrupt length field can make us allocate. */
  static final long MAX_HEADER_BYTES = 100_000_000L;
  private static final ObjectMapper COMPACT = new ObjectMapper();

  public enum Dtype {
    F32(4), F16(2), BF16(2);

    public final int bytes;

    Dtype(int bytes) {
      this.bytes = bytes;
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
   * A tensor to write: its name, shape, and a supplier of its float32 values (in the buffer's declared byte
   * order), asked for only when the tensor is written so a model is never copied whole.
   */
  public record Tensor(String name, long[] shape, Supplier<ByteBuffer> float32) {
    public static Tensor of(String name, long[] shape, ByteBuffer data) {
      return new Tensor(name, shape, () -> data);
    }
  }

  /** Receives each tensor of a file, in file order, as float32 values in a direct native-order buffer. */
  @FunctionalInterface
  public interface Sink {
    void accept(Entry entry, ByteBuffer float32);
  }

  private Safetensors() {}

  /**
   * Streams every tensor of {@code file} into {@code sink}, converted to float32.
   *
   * @return the sha256 of the whole file, computed on the way
   */
  public static byte[] read(Storage given, String file, Sink sink) {
    Storage storage = given;
    long length;
    try {
      length = storage.status(file).getLen();
    } catch (FileNotFoundException e) {
      throw new IllegalArgumentException(file + ": safetensors file not found", e);
    }
    MessageDigest sha = sha256();
    try (InputStream raw = storage.open(file); InputStream in = new DigestInputStream(raw, sha)) {
      Header header = readHeader(in, file, length);
      long position = header.dataStart();
      byte[] chunk = new byte[1 << 20];
      for (Entry e : header.entries()) {
        ByteBuffer out = ByteBuffer.allocateDirect(Math.toIntExact(e.numel() * 4)).order(ByteOrder.nativeOrder());
        long remaining = e.end() - e.begin();
        // Element bytes may straddle chunk boundaries; chunks are a multiple of every dtype size.
        while (remaining > 0) {
          int n = (int) Math.min(chunk.length, remaining);
          readFully(in, chunk, n, file, e, position);
          convert(chunk, n, e.dtype(), out);
          remaining -= n;
          position += n;
        }
        out.flip();
        sink.accept(e, out);
      }
      in.transferTo(OutputStream.nullOutputStream());
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read: " + e.getMessage(), e);
    }
    return sha.digest();
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

  private static void convert(byte[] src, int n, Dtype dtype, ByteBuffer out) {
    ByteBuffer in = ByteBuffer.wrap(src, 0, n).order(ByteOrder.LITTLE_ENDIAN);
    switch (dtype) {
      case F32 -> {
        if (out.order() == ByteOrder.LITTLE_ENDIAN) {
          out.put(src, 0, n);
        } else {
          while (in.hasRemaining()) {
            out.putFloat(in.getFloat());
          }
        }
      }
      case BF16 -> {
        while (in.hasRemaining()) {
          out.putFloat(bf16ToFloat(in.getShort()));
        }
      }
      case F16 -> {
        while (in.hasRemaining()) {
          out.putFloat(f16ToFloat(in.getShort()));
        }
      }
    }
  }

  /**
   * Writes {@code tensors} in the given order as {@code dtype}, with {@code __metadata__ {"format": "pt"}}
   * (transformers refuses files without it). The header is space-padded to 8 bytes as the reference writer does.
   */
  public static void write(OutputStream out, List<Tensor> tensors, Dtype dtype) throws IOException {
    if (dtype == Dtype.F16) {
      throw new IllegalArgumentException("writing F16 is not supported; use F32 or BF16");
    }
    out.write(header(tensors, dtype));
    byte[] chunk = new byte[1 << 20];
    for (Tensor t : tensors) {
      ByteBuffer data = t.float32().get();
      if (data.capacity() != numel(t.shape()) * 4) {
        throw new IllegalArgumentException("tensor " + t.name() + ": " + data.capacity()
            + " bytes of data for shape " + Arrays.toString(t.shape()));
      }
      ByteBuffer src = data.duplicate().order(data.order());
      src.rewind();
      ByteBuffer dst = ByteBuffer.wrap(chunk).order(ByteOrder.LITTLE_ENDIAN);
      while (src.hasRemaining()) {
        float v = src.getFloat();
        if (dtype == Dtype.F32) {
          dst.putFloat(v);
        } else {
          dst.putShort(floatToBf16(v));
        }
        if (!dst.hasRemaining()) {
          out.write(chunk, 0, dst.position());
          dst.clear();
        }
      }
      out.write(chunk, 0, dst.position());
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
