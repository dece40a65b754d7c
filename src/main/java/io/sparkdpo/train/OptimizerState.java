package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * An optimizer's state: its step count and named float32 arrays. Serialised in the safetensors layout (8-byte
 * little-endian header length, JSON header, raw little-endian data; step in {@code __metadata__}), so any
 * safetensors reader can inspect it, and the round trip is bit-exact.
 *
 * <p>The moments of a large model are 8 bytes per parameter, so they never pass through the Java heap whole:
 * {@link Tensor#of} refers to the live device array and {@link #write} copies it out {@link #CHUNK_FLOATS} at a
 * time; {@link #readLayout} plus {@link #readInto} fill device arrays from a stream the same way. Only
 * {@link #read} materialises the values on the heap (tests, small states).
 */
public record OptimizerState(long step, LinkedHashMap<String, Tensor> tensors) {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long MAX_HEADER = 100L << 20;
  /** Values copied per chunk between device memory and a stream: 4 MiB, whatever the tensor's size. */
  static final int CHUNK_FLOATS = 1 << 20;

  /**
   * A float32 array and its shape: either values on the heap, or a live device array (any float dtype) read
   * when the state is written, so it must not change or close before that.
   */
  public static final class Tensor {
    private final long[] shape;
    private final float[] heap;
    private final NDArray live;

    public Tensor(long[] shape, float[] data) {
      if (Arrays.stream(shape).reduce(1, Math::multiplyExact) != data.length) {
        throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " does not hold " + data.length
            + " values");
      }
      this.shape = shape.clone();
      this.heap = data;
      this.live = null;
    }

    private Tensor(NDArray live) {
      this.shape = live.getShape().getShape();
      this.heap = null;
      this.live = live;
    }

    /** Refers to a device array without copying it; its values are read when the state is written. */
    public static Tensor of(NDArray array) {
      return new Tensor(array);
    }

    public long[] shape() {
      return shape.clone();
    }

    public long size() {
      return Arrays.stream(shape).reduce(1, Math::multiplyExact);
    }

    /** The values on the heap (copied from the device for a live tensor; for tests and small states). */
    public float[] data() {
      if (heap != null) {
        return heap;
      }
      float[] values = new float[Math.toIntExact(size())];
      FloatBuffer out = FloatBuffer.wrap(values);
      forEachChunk(live, chunk -> out.put(chunk));
      return values;
    }

    private void writeTo(OutputStream out, byte[] scratch) throws IOException {
      ByteBuffer le = ByteBuffer.wrap(scratch).order(ByteOrder.LITTLE_ENDIAN);
      if (heap != null) {
        for (int at = 0; at < heap.length; at += CHUNK_FLOATS) {
          int n = Math.min(CHUNK_FLOATS, heap.length - at);
          le.clear();
          le.asFloatBuffer().put(heap, at, n);
          out.write(scratch, 0, 4 * n);
        }
        return;
      }
      IOException[] failure = new IOException[1];
      forEachChunk(live, chunk -> {
        if (failure[0] == null) {
          int n = chunk.remaining();
          le.clear();
          le.asFloatBuffer().put(chunk);
          try {
            out.write(scratch, 0, 4 * n);
          } catch (IOException e) {
            failure[0] = e;
          }
        }
      });
      if (failure[0] != null) {
        throw failure[0];
      }
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Tensor t && Arrays.equals(shape, t.shape)
          && Arrays.equals(floatBits(data()), floatBits(t.data()));
    }

    @Override
    public int hashCode() {
      return 31 * Arrays.hashCode(shape) + Arrays.hashCode(floatBits(data()));
    }

    @Override
    public String toString() {
      return "Tensor" + Arrays.toString(shape);
    }

    private static int[] floatBits(float[] a) {
      int[] bits = new int[a.length];
      for (int i = 0; i < a.length; i++) {
        bits[i] = Float.floatToRawIntBits(a[i]);
      }
      return bits;
    }
  }

  /** Receives consecutive float32 chunks of a device array. */
  private interface ChunkSink {
    void accept(FloatBuffer chunk);
  }

  /**
   * Copies a device array to the host in chunks of at most {@link #CHUNK_FLOATS}, as float32, through slices of a
   * flat view: never one buffer of the whole tensor (DJL's buffers are int-indexed, and a 2 GiB tensor would
   * double in host memory).
   */
  private static void forEachChunk(NDArray array, ChunkSink sink) {
    long n = array.size();
    try (GradMode ignored = GradMode.off(); NDArray flat = array.reshape(-1)) {
      for (long at = 0; at < n; at += CHUNK_FLOATS) {
        long end = Math.min(n, at + CHUNK_FLOATS);
        try (NDArray slice = flat.get(new NDIndex(at + ":" + end));
             NDArray f32 = slice.getDataType() == DataType.FLOAT32 ? null : slice.toType(DataType.FLOAT32, true)) {
          sink.accept((f32 == null ? slice : f32).toByteBuffer().order(ByteOrder.nativeOrder()).asFloatBuffer());
        }
      }
    }
  }

  public void write(OutputStream out) throws IOException {
    Map<String, Object> header = new LinkedHashMap<>();
    header.put("__metadata__", Map.of("format", "spark-dpo-optimizer", "step", Long.toString(step)));
    long offset = 0;
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      long bytes = 4L * e.getValue().size();
      Map<String, Object> entry = new LinkedHashMap<>();
      entry.put("dtype", "F32");
      entry.put("shape", e.getValue().shape());
      entry.put("data_offsets", List.of(offset, offset + bytes));
      header.put(e.getKey(), entry);
      offset += bytes;
    }
    byte[] json = JSON.writeValueAsBytes(header);
    int padded = (json.length + 7) / 8 * 8; // safetensors pads the header with spaces to 8 bytes
    byte[] headerBytes = Arrays.copyOf(json, padded);
    Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
    out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
    out.write(headerBytes);
    byte[] scratch = new byte[4 * CHUNK_FLOATS];
    for (Tensor t : tensors.values()) {
      t.writeTo(out, scratch);
    }
  }

  /** One array of a state file: its name, shape and byte range in the data section. */
  public record Entry(String name, long[] shape, long begin, long end) {
    public long size() {
      return (end - begin) / 4;
    }
  }

  /** A state file's step and entries in data order; the stream is left at the start of the data. */
  public record Layout(long step, List<Entry> entries) {}

  /** Reads and checks the header of what {@link #write} wrote; {@code source} names the file in errors. */
  public static Layout readLayout(InputStream in, String source) throws IOException {
    DataInputStream data = new DataInputStream(in);
    byte[] lengthBytes = new byte[8];
    data.readFully(lengthBytes);
    long headerLength = ByteBuffer.wrap(lengthBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
    if (headerLength <= 0 || headerLength > MAX_HEADER) {
      throw new IOException(source + ": not an optimizer state file (header length " + headerLength + ")");
    }
    byte[] headerBytes = new byte[(int) headerLength];
    data.readFully(headerBytes);
    Map<String, Map<String, Object>> header = JSON.readValue(
        new String(headerBytes, StandardCharsets.UTF_8).trim(), new TypeReference<>() {});
    Map<String, Object> meta = header.remove("__metadata__");
    if (meta == null || !"spark-dpo-optimizer".equals(meta.get("format")) || meta.get("step") == null) {
      throw new IOException(source + ": header lacks spark-dpo-optimizer metadata");
    }
    // Entries in data order, which is the order they were written in.
    TreeMap<Long, String> byOffset = new TreeMap<>();
    for (Map.Entry<String, Map<String, Object>> e : header.entrySet()) {
      if (!"F32".equals(e.getValue().get("dtype"))) {
        throw new IOException(source + ": " + e.getKey() + " has dtype " + e.getValue().get("dtype")
            + ", expected F32");
      }
      byOffset.put(((Number) ((List<?>) e.getValue().get("data_offsets")).get(0)).longValue(), e.getKey());
    }
    List<Entry> entries = new ArrayList<>();
    long position = 0;
    for (Map.Entry<Long, String> e : byOffset.entrySet()) {
      Map<String, Object> entry = header.get(e.getValue());
      List<?> offsets = (List<?>) entry.get("data_offsets");
      long begin = ((Number) offsets.get(0)).longValue();
      long end = ((Number) offsets.get(1)).longValue();
      long[] shape = ((List<?>) entry.get("shape")).stream().mapToLong(x -> ((Number) x).longValue()).toArray();
      if (begin != position || (end - begin) % 4 != 0
          || Arrays.stream(shape).reduce(1, Math::multiplyExact) * 4 != end - begin) {
        throw new IOException(source + ": " + e.getValue() + " has data offsets [" + begin + ", " + end
            + "] and shape " + Arrays.toString(shape) + ", expected to start at " + position
            + " and hold 4 bytes per value");
      }
      entries.add(new Entry(e.getValue(), shape, begin, end));
      position = end;
    }
    return new Layout(Long.parseLong((String) meta.get("step")), List.copyOf(entries));
  }

  /**
   * Reads the next entry's values from {@code in} (positioned by {@link #readLayout} and earlier calls) into
   * {@code target}, a device array of the entry's shape, {@link #CHUNK_FLOATS} at a time.
   */
  public static void readInto(InputStream in, Entry entry, NDArray target) throws IOException {
    if (!new Shape(entry.shape()).equals(target.getShape())) {
      throw new IllegalArgumentException(entry.name() + " has shape " + new Shape(entry.shape()) + ", the target "
          + target.getShape());
    }
    DataInputStream data = new DataInputStream(in);
    long n = entry.size();
    byte[] raw = new byte[4 * (int) Math.min(CHUNK_FLOATS, Math.max(1, n))];
    ByteBuffer staging = ByteBuffer.allocateDirect(raw.length).order(ByteOrder.nativeOrder());
    try (GradMode ignored = GradMode.off(); NDArray flat = target.reshape(-1)) {
      for (long at = 0; at < n; at += CHUNK_FLOATS) {
        int count = (int) Math.min(CHUNK_FLOATS, n - at);
        data.readFully(raw, 0, 4 * count);
        staging.clear();
        staging.asFloatBuffer().put(ByteBuffer.wrap(raw, 0, 4 * count).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer());
        staging.limit(4 * count);
        // The chunk array aliases the staging buffer; set() copies it into the target before the next chunk.
        try (NDArray chunk = target.getManager().create(staging, new Shape(count), DataType.FLOAT32);
             NDArray typed = chunk.getDataType() == target.getDataType() ? null : chunk.toType(target.getDataType(), true)) {
          flat.set(new NDIndex(at + ":" + (at + count)), typed == null ? chunk : typed);
        }
      }
    }
  }

  /** Reads what {@link #write} wrote, values on the heap; {@code source} names the file in errors. */
  public static OptimizerState read(InputStream in, String source) throws IOException {
    Layout layout = readLayout(in, source);
    DataInputStream data = new DataInputStream(in);
    LinkedHashMap<String, Tensor> tensors = new LinkedHashMap<>();
    for (Entry e : layout.entries()) {
      byte[] raw = new byte[Math.toIntExact(e.end() - e.begin())];
      data.readFully(raw);
      float[] values = new float[raw.length / 4];
      ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
      tensors.put(e.name(), new Tensor(e.shape(), values));
    }
    return new OptimizerState(layout.step(), tensors);
  }
}
