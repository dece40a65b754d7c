package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Weights in bfloat16 and float16: loading in the file's or a chosen dtype, streaming tensors in row slices,
 * the numerics against torch bfloat16 following transformers (tools/golden/bf16_golden.py), and F16/BF16 rounding
 * against torch's own.
 */
class LowPrecisionTest {
  /**
   * Two bf16 implementations (libtorch 2.7 here, Debian's torch 1.13 for the golden) round differently inside
   * their kernels (gemm blocking, fused attention), and on these random tiny models one changed bf16 ulp cascades:
   * measured 1.2e-4 to 1.3e-2 relative between them, the same size as bf16's own error against float64 (up to
   * 1.4e-2). The 1e-3 first aimed at is not reachable across torch versions; this bound still fails a float32
   * computation of the logits only if it is, so the float32-vs-bf16 test below pins that the flow is bf16.
   */
  static final double RELATIVE = 2e-2;

  @TempDir
  Path dir;

  static JsonNode lowPrecisionGolden() throws Exception {
    return Json.MAPPER.readTree(Path.of(GoldenReferenceTest.folder("low_precision.json")).toFile());
  }

  private static CausalLM load(String folder, DataType dtype) {
    return CausalLM.load(folder, Storage.local(), Device.cpu(), CausalLM.DEFAULT_SEED, dtype);
  }

  private static double[] sums(CausalLM model, JsonNode items) {
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    for (JsonNode s : items) {
      prompts.add(GoldenReferenceTest.ints(s.get("prompt")));
      responses.add(GoldenReferenceTest.ints(s.get("response")));
    }
    try (NDManager m = NDManager.newBaseManager()) {
      return new SequenceLogProbs(model).compute(m, prompts, responses, false).sums();
    }
  }

  /** Raw bytes of every parameter, in state-dict order. */
  private static List<byte[]> bytes(CausalLM model) {
    List<byte[]> out = new ArrayList<>();
    for (Parameter p : model.parameters().values()) {
      ByteBuffer b = p.getArray().toByteBuffer(true);
      byte[] a = new byte[b.remaining()];
      b.get(a);
      out.add(a);
    }
    return out;
  }

  @Test
  void bfloat16LogProbsFollowTorchBfloat16WithFusedAndExplicitOps() throws Exception {
    JsonNode golden = lowPrecisionGolden().get("logprobs");
    for (String name : List.of("llama_biases_untied_bf16", "llama_gqa_tied_f32")) {
      JsonNode items = golden.get(name);
      try (CausalLM model = load(GoldenReferenceTest.folder(name), DataType.BFLOAT16)) {
        assertEquals(DataType.BFLOAT16, model.dtype());
        for (boolean fused : new boolean[] {true, false}) {
          model.useFusedOps(fused);
          double[] java = sums(model, items);
          for (int i = 0; i < java.length; i++) {
            double torchBf16 = items.get(i).get("sum_logp").asDouble();
            double float64 = items.get(i).get("float64_sum_logp").asDouble();
            double relative = Math.abs(java[i] - torchBf16) / Math.abs(torchBf16);
            assertTrue(relative < RELATIVE, name + " fused=" + fused + " sequence " + i + ": java " + java[i]
                + " torch bf16 " + torchBf16 + " (float64 " + float64 + ")");
          }
        }
      }
    }
  }

  @Test
  void bfloat16ComputesInBfloat16NotInFloat32() throws Exception {
    JsonNode items = lowPrecisionGolden().get("logprobs").get("llama_biases_untied_bf16");
    String folder = GoldenReferenceTest.folder("llama_biases_untied_bf16");
    try (CausalLM narrow = load(folder, DataType.BFLOAT16); CausalLM wide = load(folder, DataType.FLOAT32)) {
      double[] b = sums(narrow, items);
      double[] f = sums(wide, items);
      for (int i = 0; i < b.length; i++) {
        // same weights (the file is bf16): only the arithmetic differs
        assertEquals(items.get(i).get("float64_sum_logp").asDouble(), f[i], GoldenReferenceTest.TOLERANCE);
        assertTrue(Math.abs(b[i] - f[i]) > 1e-4 * Math.abs(f[i]), "sequence " + i + ": bf16 " + b[i] + " float32 " + f[i]);
      }
    }
  }

  @Test
  void aBfloat16FolderLoadsInBfloat16ByDefaultAndWidensOnRequest() {
    String folder = GoldenReferenceTest.folder("llama_biases_untied_bf16");
    try (CausalLM auto = CausalLM.load(folder, Storage.local(), Device.cpu());
        CausalLM wide = load(folder, DataType.FLOAT32)) {
      assertEquals(DataType.BFLOAT16, auto.dtype());
      assertEquals(DataType.FLOAT32, wide.dtype());
      assertEquals(auto.fingerprint(), wide.fingerprint(), "the fingerprint is the folder's, whatever the dtype");
      long narrowBytes = 0;
      long wideBytes = 0;
      for (Map.Entry<String, Parameter> e : auto.parameters().entrySet()) {
        ByteBuffer narrow = e.getValue().getArray().toByteBuffer(true).order(ByteOrder.nativeOrder());
        float[] widened = wide.parameters().get(e.getKey()).getArray().toFloatArray();
        narrowBytes += narrow.remaining();
        wideBytes += widened.length * 4L;
        for (int i = 0; i < widened.length; i++) {
          assertEquals(widened[i], Safetensors.bf16ToFloat(narrow.getShort(2 * i)), e.getKey() + "[" + i + "]");
        }
      }
      assertEquals(2 * auto.numParameters(), narrowBytes);
      assertEquals(2 * narrowBytes, wideBytes, "memory halves in bfloat16");
    }
    assertEquals(DataType.FLOAT32, CausalLM.resolveDtype("auto", null));
    assertThrows(IllegalArgumentException.class, () -> CausalLM.resolveDtype("float64", null));
  }

  @Test
  void tensorsStreamInRowSlicesIdenticallyToOneSlice() throws Exception {
    String folder = GoldenReferenceTest.folder("mistral_window_sharded_f32");
    long saved = CausalLM.sliceBytes;
    List<List<byte[]>> whole = new ArrayList<>();
    for (DataType t : List.of(DataType.FLOAT32, DataType.BFLOAT16, DataType.FLOAT16)) {
      try (CausalLM m = load(folder, t)) {
        whole.add(bytes(m));
        m.save(dir.resolve("one-" + t).toString(), Storage.local(), t, 3000);
      }
    }
    try {
      CausalLM.sliceBytes = 100; // several rows per slice, every matrix in many slices, some slices one row
      int k = 0;
      for (DataType t : List.of(DataType.FLOAT32, DataType.BFLOAT16, DataType.FLOAT16)) {
        try (CausalLM m = load(folder, t)) {
          List<byte[]> sliced = bytes(m);
          for (int i = 0; i < sliced.size(); i++) {
            assertArrayEquals(whole.get(k).get(i), sliced.get(i), t + " parameter " + i);
          }
          m.save(dir.resolve("sliced-" + t).toString(), Storage.local(), t, 3000);
        }
        try (var files = Files.list(dir.resolve("one-" + t))) {
          for (Path f : files.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
            assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(dir.resolve("sliced-" + t).resolve(
                f.getFileName())), f.getFileName() + " " + t);
          }
        }
        k++;
      }
    } finally {
      CausalLM.sliceBytes = saved;
    }
    assertTrue(Files.exists(dir.resolve("one-float16").resolve(ModelFolder.INDEX)), "sharded at 3000 bytes");
  }

  @Test
  void float16AndBfloat16RoundingIsTorchs() throws Exception {
    for (JsonNode r : lowPrecisionGolden().get("rounding")) {
      float v = Float.intBitsToFloat((int) r.get("f32").asLong());
      assertEquals(r.get("f16").asInt(), Safetensors.floatToF16(v) & 0xFFFF, "f16 of " + v);
      assertEquals(r.get("bf16").asInt(), Safetensors.floatToBf16(v) & 0xFFFF, "bf16 of " + v);
      if (!Float.isNaN(v) && Math.abs(v) <= 65504f) {
        float back = Safetensors.f16ToFloat(Safetensors.floatToF16(v));
        assertTrue(Math.abs(back - v) <= Math.max(Math.abs(v) * 0x1p-11f, 0x1p-25f), v + " -> " + back);
      }
    }
  }

  @Test
  void float16SavesAndReloadsInFloat16() throws Exception {
    String out = dir.resolve("f16").toString();
    try (CausalLM source = load(GoldenReferenceTest.folder("llama_gqa_tied_f32"), DataType.FLOAT32)) {
      source.save(out, Storage.local(), DataType.FLOAT16);
      try (CausalLM half = CausalLM.load(out, Storage.local(), Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        assertEquals(DataType.FLOAT16, half.dtype());
        assertEquals("float16", Json.MAPPER.readTree(Path.of(out, "config.json").toFile()).get("torch_dtype").asText());
        float[] original = source.parameters().get("model.norm.weight").getArray().toFloatArray();
        NDArray stored = half.parameters().get("model.norm.weight").getArray();
        ByteBuffer b = stored.toByteBuffer(true).order(ByteOrder.nativeOrder());
        for (int i = 0; i < original.length; i++) {
          assertEquals(Safetensors.floatToF16(original[i]), b.getShort(2 * i));
        }
        JsonNode items = GoldenReferenceTest.golden("llama_gqa_tied_f32").get("sequences");
        double[] a = sums(source, items);
        double[] h = sums(half, items);
        for (int i = 0; i < a.length; i++) {
          assertEquals(a[i], h[i], Math.abs(a[i]) * 1e-2, "f16 sequence " + i);
        }
      }
    }
  }

  @Test
  void shardSizesParseAsTransformersDoes() {
    assertEquals(5_000_000_000L, ModelFolder.parseSize("5GB"));
    assertEquals(500_000_000L, ModelFolder.parseSize("500MB"));
    assertEquals(2L << 30, ModelFolder.parseSize("2GiB"));
    assertEquals(10L << 20, ModelFolder.parseSize("10MiB"));
    assertEquals(4096, ModelFolder.parseSize("4096"));
    assertEquals(625_000_000L, ModelFolder.parseSize("5Gb"), "lower-case b: bits");
    assertThrows(IllegalArgumentException.class, () -> ModelFolder.parseSize("1.5GB"));
    assertThrows(IllegalArgumentException.class, () -> ModelFolder.parseSize("0"));
  }
}
