package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelExportTest {
  private static final Storage STORAGE = Storage.local();

  @TempDir
  Path dir;

  @Test
  void float32ExportIsAHuggingFaceFolderWithTheSameLogProbsAndASecondExportDoesNothing() throws IOException {
    Path out = dir.resolve("export");
    ModelExport.Result r = ModelExport.export(STORAGE, CausalLM.BUILTIN_TINY, out.toString(), "float32", 7);
    assertFalse(r.upToDate());
    for (String f : List.of("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
        "tokenizer_config.json", ModelExport.MANIFEST)) {
      assertTrue(Files.size(out.resolve(f)) > 0, f);
    }
    assertEquals(0.0, r.manifest().maxLogProbDifference());
    assertEquals(CausalLM.fingerprintOf(CausalLM.BUILTIN_TINY, STORAGE, 7), r.manifest().sourceFingerprint());
    List<int[]> probes = ModelExport.probes(4096);
    try (CausalLM source = CausalLM.load(CausalLM.BUILTIN_TINY, STORAGE, CausalLM.device("cpu"), 7);
         CausalLM exported = CausalLM.load(out.toString(), STORAGE, CausalLM.device("cpu"))) {
      double[] expected = ModelExport.sums(source, probes);
      assertArrayEquals(expected, ModelExport.sums(exported, probes));
      // 47 response tokens of a 4096-token vocabulary at random: about 47 ln 4096 = 391 nats.
      assertTrue(expected[0] < -300 && expected[0] > -500, "log-prob " + expected[0]);
    }

    FileTime written = Files.getLastModifiedTime(out.resolve("model.safetensors"));
    ModelExport.Result again = ModelExport.export(STORAGE, CausalLM.BUILTIN_TINY, out.toString(), "float32", 7);
    assertTrue(again.upToDate());
    assertEquals(written, Files.getLastModifiedTime(out.resolve("model.safetensors")));
    ModelExport.Result otherSeed = ModelExport.export(STORAGE, CausalLM.BUILTIN_TINY, out.toString(), "float32", 8);
    assertFalse(otherSeed.upToDate(), "another source is exported again");
  }

  @Test
  void bfloat16ExportRecordsItsRoundingOfTheLogProbs() throws IOException {
    Path source = dir.resolve("source");
    try (CausalLM m = CausalLM.load(CausalLM.BUILTIN_TINY, STORAGE, CausalLM.device("cpu"), 3)) {
      m.save(source.toString(), STORAGE, DataType.FLOAT32);
    }
    Path out = dir.resolve("bf16");
    ModelExport.Result r = ModelExport.export(STORAGE, source.toString(), out.toString(), "bfloat16", 0);
    assertTrue(Files.readString(out.resolve("config.json")).contains("\"torch_dtype\" : \"bfloat16\""));
    assertEquals(Files.size(source.resolve("model.safetensors")) / 2,
        Files.size(out.resolve("model.safetensors")), 4096, "half the bytes, up to the header");
    double diff = r.manifest().maxLogProbDifference();
    assertTrue(diff > 0 && diff < 1.0, "bf16 rounding moves the summed log-probs a little: " + diff);
  }

  @Test
  void refusesASourceWithoutTokenizerFiles() {
    Path bare = dir.resolve("bare");
    try (CausalLM m = CausalLM.create(ModelConfig.llama(64, 16, 32, 1, 2, 2, true), CausalLM.device("cpu"), 1)) {
      m.save(bare.toString(), STORAGE, DataType.FLOAT32);
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ModelExport.export(STORAGE, bare.toString(), dir.resolve("out").toString(), "float32", 0));
    assertTrue(e.getMessage().contains("has no tokenizer.json to export"), e.getMessage());
  }
}
