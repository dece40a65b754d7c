package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * An optimizer's state on the host: its step count and named float32 arrays. Serialised in the safetensors
 * layout (8-byte little-endian header length, JSON header, raw little-endian data; step in
 * {@code __metadata__}), so any safetensors reader can inspect it, and the round trip is bit-exact.
 */
public record OptimizerState(long step, LinkedHashMap<String, Tensor> tensors) {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long MAX_HEADER = 100L << 20;

  /** A float32 array and its shape. */
  public record Tensor(long[] shape, float[] data) {
    public Tensor {
      if (Arrays.stream(shape).reduce(1, Math::multiplyExact) != data.length) {
        throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " does not hold " + data.length
            + " values");
      }
    }

    /** Copies a device array to the host (as float32). */
    public static Tensor of(NDArray array) {
      float[] values;
      if (array.getDataType() == DataType.FLOAT32) {
        values = array.toFloatArray();
      } else {
        try (NDArray f = array.toType(DataType.FLOAT32, true)) {
          values = f.toFloatArray();
        }
      }
      return new Tensor(array.getShape().getShape(), values);
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Tensor t && Arrays.equals(shape, t.shape)
          && Arrays.equals(floatBits(data), floatBits(t.data));
    }

    @Override
    public int hashCode() {
      return 31 * Arrays.hashCode(shape) + Arrays.hashCode(floatBits(data));
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

  public void write(OutputStream out) throws IOException {
    Map<String, Object> header = new LinkedHashMap<>();
    header.put("__metadata__", Map.of("format", "spark-dpo-optimizer", "step", Long.toString(step)));
    long offset = 0;
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      long bytes = 4L * e.getValue().data().length;
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
    ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
    for (Tensor t : tensors.values()) {
      for (float f : t.data()) {
        if (!chunk.hasRemaining()) {
          out.write(chunk.array(), 0, chunk.position());
          chunk.clear();
        }
        chunk.putInt(Float.floatToRawIntBits(f));
      }
    }
    out.write(chunk.array(), 0, chunk.position());
  }

  /** Reads what {@link #write} wrote; {@code source} names the file in errors. */
  public static OptimizerState read(InputStream in, String source) throws IOException {
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
    LinkedHashMap<String, Tensor> tensors = new LinkedHashMap<>();
    long position = 0;
    for (Map.Entry<Long, String> e : byOffset.entrySet()) {
      Map<String, Object> entry = header.get(e.getValue());
      List<?> offsets = (List<?>) entry.get("data_offsets");
      long begin = ((Number) offsets.get(0)).longValue();
      long end = ((Number) offsets.get(1)).longValue();
      long[] shape = ((List<?>) entry.get("shape")).stream().mapToLong(x -> ((Number) x).longValue()).toArray();
      if (begin != position || (end - begin) % 4 != 0) {
        throw new IOException(source + ": " + e.getValue() + " has data offsets [" + begin + ", " + end
            + "], expected to start at " + position);
      }
      byte[] raw = new byte[Math.toIntExact(end - begin)];
      data.readFully(raw);
      float[] values = new float[raw.length / 4];
      ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
      tensors.put(e.getValue(), new Tensor(shape, values));
      position = end;
    }
    return new OptimizerState(Long.parseLong((String) meta.get("step")), tensors);
  }
}
