package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
  @TempDir
  Path dir;

  private static ByteBuffer floats(float... values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.nativeOrder());
    for (float v : values) {
      b.putFloat(v);
    }
    return b.flip();
  }

  private Map<String, float[]> readAll(String file) {
    Map<String, float[]> out = new LinkedHashMap<>();
    Safetensors.read(Storage.local(), file, (entry, data) -> {
      float[] f = new float[data.remaining() / 4];
      data.asFloatBuffer().get(f);
      out.put(entry.name(), f);
    });
    return out;
  }

  private String write(String name, List<Safetensors.Tensor> tensors, Safetensors.Dtype dtype) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Safetensors.write(out, tensors, dtype);
    Path file = dir.resolve(name);
    Files.write(file, out.toByteArray());
    assertEquals(Safetensors.fileSize(tensors, dtype), out.size());
    return file.toString();
  }

  @Test
  void float32RoundTripsExactlyWithAFormatPtHeaderPaddedToEightBytes() throws Exception {
    float[] a = {1.5f, -2.25f, 3e-38f, Float.MAX_VALUE, -0f, 7f};
    String file = write("a.safetensors", List.of(Safetensors.Tensor.of("w", new long[] {2, 3}, floats(a)),
        Safetensors.Tensor.of("b", new long[] {1}, floats(9f))), Safetensors.Dtype.F32);
    Map<String, float[]> back = readAll(file);
    assertArrayEquals(a, back.get("w"));
    assertArrayEquals(new float[] {9f}, back.get("b"));
    byte[] bytes = Files.readAllBytes(Path.of(file));
    long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, headerLength % 8);
    String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
    assertTrue(header.contains("\"__metadata__\":{\"format\":\"pt\"}"), header);
    assertTrue(header.contains("\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), header);
  }

  @Test
  void bfloat16RoundsToNearestEvenLikeTorch() {
    // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one, 1.
    assertEquals(1f, Safetensors.bf16ToFloat(Safetensors.floatToBf16(1f + 0x1p-8f)));
    // 1 + 3 * 2^-8 ties between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
    assertEquals(1f + 0x1p-6f, Safetensors.bf16ToFloat(Safetensors.floatToBf16(1f + 3 * 0x1p-8f)));
    assertEquals(1f + 0x1p-7f, Safetensors.bf16ToFloat(Safetensors.floatToBf16(1f + 0x1p-8f + 0x1p-20f)));
    assertEquals((short) 0x3F80, Safetensors.floatToBf16(1f));
    assertEquals(Float.POSITIVE_INFINITY, Safetensors.bf16ToFloat(Safetensors.floatToBf16(Float.MAX_VALUE)));
    assertTrue(Float.isNaN(Safetensors.bf16ToFloat(Safetensors.floatToBf16(Float.NaN))));
  }

  @Test
  void float16DecodesNormalsSubnormalsInfinitiesAndNaN() {
    assertEquals(1f, Safetensors.f16ToFloat((short) 0x3C00));
    assertEquals(-2f, Safetensors.f16ToFloat((short) 0xC000));
    assertEquals(65504f, Safetensors.f16ToFloat((short) 0x7BFF));
    assertEquals(0x1p-24f, Safetensors.f16ToFloat((short) 0x0001));
    assertEquals(-0x1p-14f * (1023f / 1024f), Safetensors.f16ToFloat((short) 0x83FF));
    assertEquals(Float.NEGATIVE_INFINITY, Safetensors.f16ToFloat((short) 0xFC00));
    assertTrue(Float.isNaN(Safetensors.f16ToFloat((short) 0x7E00)));
  }

  @Test
  void readsBfloat16AndFloat16FilesAsFloat32() throws Exception {
    String bf16 = write("b.safetensors", List.of(Safetensors.Tensor.of("x", new long[] {3}, floats(1f, -0.5f, 3.14159f))),
        Safetensors.Dtype.BF16);
    assertArrayEquals(new float[] {1f, -0.5f, 3.140625f}, readAll(bf16).get("x"));
    // A hand-made F16 file: [1.0, -2.0] = 0x3C00, 0xC000.
    byte[] header = "{\"x\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}".getBytes(StandardCharsets.UTF_8);
    ByteBuffer file = ByteBuffer.allocate(8 + header.length + 4).order(ByteOrder.LITTLE_ENDIAN);
    file.putLong(header.length).put(header).putShort((short) 0x3C00).putShort((short) 0xC000);
    Path f16 = dir.resolve("h.safetensors");
    Files.write(f16, file.array());
    assertArrayEquals(new float[] {1f, -2f}, readAll(f16.toString()).get("x"));
  }

  @Test
  void aTruncatedFileFailsNamingTheFileAndTheTensor() throws Exception {
    String file = write("t.safetensors", List.of(Safetensors.Tensor.of("first", new long[] {4}, floats(1, 2, 3, 4)),
        Safetensors.Tensor.of("second", new long[] {4}, floats(5, 6, 7, 8))), Safetensors.Dtype.F32);
    byte[] bytes = Files.readAllBytes(Path.of(file));
    Files.write(Path.of(file), Arrays.copyOf(bytes, bytes.length - 3));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> readAll(file));
    assertTrue(e.getMessage().contains(file) && e.getMessage().contains("truncated")
        && e.getMessage().contains("tensor second"), e.getMessage());
    Files.write(Path.of(file), Arrays.copyOf(bytes, 20));
    e = assertThrows(IllegalArgumentException.class, () -> readAll(file));
    assertTrue(e.getMessage().contains(file) && e.getMessage().contains("truncated"), e.getMessage());
  }

  @Test
  void corruptHeadersFailWithTheFileNamed() throws Exception {
    Path file = dir.resolve("c.safetensors");
    // header length field far beyond the file
    Files.write(file, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
    assertTrue(assertThrows(IllegalArgumentException.class, () -> readAll(file.toString())).getMessage()
        .contains("corrupt safetensors header length"));
    // not JSON
    byte[] junk = "{oops".getBytes(StandardCharsets.UTF_8);
    Files.write(file, ByteBuffer.allocate(8 + junk.length).order(ByteOrder.LITTLE_ENDIAN).putLong(junk.length)
        .put(junk).array());
    assertTrue(assertThrows(IllegalArgumentException.class, () -> readAll(file.toString())).getMessage()
        .contains(file + ": corrupt safetensors header (not JSON"));
    // offsets that do not match the shape, and an unsupported dtype
    for (String entry : List.of("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
        "{\"x\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}")) {
      byte[] h = entry.getBytes(StandardCharsets.UTF_8);
      Files.write(file, ByteBuffer.allocate(8 + h.length + 8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length)
          .put(h).array());
      String message = assertThrows(IllegalArgumentException.class, () -> readAll(file.toString())).getMessage();
      assertTrue(message.contains(file + ": tensor x"), message);
    }
  }

  @Test
  void shardsGreedilyInOrderUnderTheSizeLimit() {
    List<Safetensors.Tensor> tensors = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      tensors.add(Safetensors.Tensor.of("t" + i, new long[] {10}, floats(new float[10])));
    }
    List<List<Safetensors.Tensor>> shards = ModelFolder.shard(tensors, Safetensors.Dtype.F32, 85);
    assertEquals(List.of(2, 2, 1), shards.stream().map(List::size).toList());
    assertEquals(1, ModelFolder.shard(tensors, Safetensors.Dtype.BF16, 100).size());
    assertEquals(5, ModelFolder.shard(tensors, Safetensors.Dtype.F32, 1).size());
  }
}
