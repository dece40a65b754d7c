package io.sparkdpo.model;

import static io.sparkdpo.model.ModelThroughputBench.median;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * How fast a published-size checkpoint loads compared with reading its bytes: the Llama-3.2-1B-shaped folder that
 * {@code tools/published/write_checkpoint.py} writes (bf16, 3 shards, 2.47 GB of tensors). Per round, in turns: read
 * every shard through {@link Storage} into a 4 MiB buffer (no parsing, no hashing), then {@code CausalLM.load} in the
 * stored bf16 (parse, check, hash for the fingerprint, copy into the parameters) and in float32 (plus widening).
 * Files are read once before the first round, so every read comes from the page cache (as a second load on an
 * executor would); the ratio read seconds / load seconds is taken per round, the median reported. Target: >= 0.5.
 * Run: {@code mvn -B -o -Pbench test -Dtest=CheckpointLoadBench [-Dpublished.model=DIR] [-Dbench.rounds=3]}.
 */
@Tag("bench")
class CheckpointLoadBench {
  private static final String MODEL = System.getProperty("published.model", "/work/published-ckpt/llama-3.2-1b");
  private static final int ROUNDS = Integer.getInteger("bench.rounds", 3);

  @Test
  void loadingAPublishedSizeCheckpointAgainstReadingItsBytes() {
    assertTrue(Files.isRegularFile(Path.of(MODEL, ModelFolder.CONFIG)), MODEL + " holds no checkpoint: write it with "
        + "/usr/bin/python3 tools/published/write_checkpoint.py --model llama-3.2-1b --out " + MODEL);
    Storage storage = Storage.local();
    List<String> files = new ArrayList<>();
    ModelFolder.weightMap(storage, MODEL, files);
    long bytes = read(storage, files); // warm the page cache
    double[] readSeconds = new double[ROUNDS];
    double[] bf16Seconds = new double[ROUNDS];
    double[] f32Seconds = new double[ROUNDS];
    long parameters = 0;
    for (int r = 0; r < ROUNDS; r++) {
      long t0 = System.nanoTime();
      assertEquals(bytes, read(storage, files));
      readSeconds[r] = (System.nanoTime() - t0) / 1e9;
      t0 = System.nanoTime();
      try (CausalLM m = CausalLM.load(MODEL, storage, Device.cpu(), CausalLM.DEFAULT_SEED, DataType.BFLOAT16)) {
        bf16Seconds[r] = (System.nanoTime() - t0) / 1e9;
        parameters = m.numParameters();
      }
      t0 = System.nanoTime();
      try (CausalLM m = CausalLM.load(MODEL, storage, Device.cpu(), CausalLM.DEFAULT_SEED, DataType.FLOAT32)) {
        f32Seconds[r] = (System.nanoTime() - t0) / 1e9;
      }
      System.out.printf(Locale.ROOT, "round %d: read %.2f s, load bf16 %.2f s, load float32 %.2f s%n", r + 1,
          readSeconds[r], bf16Seconds[r], f32Seconds[r]);
    }
    double[] ratioBf16 = new double[ROUNDS];
    double[] ratioF32 = new double[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
      ratioBf16[r] = readSeconds[r] / bf16Seconds[r];
      ratioF32[r] = readSeconds[r] / f32Seconds[r];
    }
    System.out.printf(Locale.ROOT, "%s: %,d parameters, %,d bytes in %d file(s); median read %.2f s (%.2f GB/s), "
        + "load bf16 %.2f s (ratio %.2f), load float32 %.2f s (ratio %.2f)%n", MODEL, parameters, bytes, files.size(),
        median(readSeconds), bytes / median(readSeconds) / 1e9, median(bf16Seconds), median(ratioBf16),
        median(f32Seconds), median(ratioF32));
  }

  /**
   * A real tensor over 2 GiB (the largest a DJL buffer can hold): a one-layer model with a 262,144 x 2,304 float32
   * embedding (2.42 GB, as in Gemma-2-2B; Llama-3-8B's is 2.10 GB) is saved, loaded and saved again; both files
   * must be identical and the reloaded embedding must equal the original element for element (sampled).
   */
  @Test
  void aTensorOver2GiBSavesAndLoadsBitForBit(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
    ModelConfig config = ModelConfig.llama(262_144, 2_304, 256, 1, 8, 8, true);
    String first = dir.resolve("first").toString();
    String second = dir.resolve("second").toString();
    long t0 = System.nanoTime();
    float[] probe;
    try (CausalLM m = CausalLM.create(config, Device.cpu(), 3)) {
      ai.djl.ndarray.NDArray embedding = m.parameters().get("model.embed_tokens.weight").getArray();
      assertTrue(embedding.size() * 4 > Integer.MAX_VALUE, "the embedding is over 2 GiB");
      probe = embedding.get("-1, :").toFloatArray();
      m.save(first, Storage.local(), DataType.FLOAT32);
    }
    double create = (System.nanoTime() - t0) / 1e9;
    t0 = System.nanoTime();
    try (CausalLM m = CausalLM.load(first, Storage.local(), Device.cpu(), CausalLM.DEFAULT_SEED, DataType.FLOAT32)) {
      double load = (System.nanoTime() - t0) / 1e9;
      org.junit.jupiter.api.Assertions.assertArrayEquals(probe,
          m.parameters().get("model.embed_tokens.weight").getArray().get("-1, :").toFloatArray(), 0f);
      m.save(second, Storage.local(), DataType.FLOAT32);
      long size = Files.size(Path.of(first, ModelFolder.WEIGHTS));
      assertEquals(-1L, Files.mismatch(Path.of(first, ModelFolder.WEIGHTS), Path.of(second, ModelFolder.WEIGHTS)));
      System.out.printf(Locale.ROOT, "tensor over 2 GiB: %,d-byte file; create + save %.1f s, load %.1f s; saved "
          + "again byte-identical%n", size, create, load);
    }
  }

  private static long read(Storage storage, List<String> files) {
    byte[] buffer = new byte[4 << 20];
    long total = 0;
    for (String f : files) {
      try (InputStream in = storage.open(Storage.join(MODEL, f))) {
        for (int n; (n = in.read(buffer)) > 0; ) {
          total += n;
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return total;
  }
}
