package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Parameter;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelExport;
import io.sparkdpo.model.NoGrad;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code spark-dpo export} of a LoRA adapter: the PEFT folder as it is, or merged into the base. */
class ExportLoraTest {
  private static final Storage STORAGE = Storage.local();
  @TempDir
  Path dir;

  /** An adapter on builtin:tiny (seed 3) whose lora_B is not zero, so merging changes the weights. */
  private String adapter() {
    String folder = dir.resolve("adapter").toString();
    try (CausalLM m = CausalLM.load(CausalLM.BUILTIN_TINY, STORAGE, CausalLM.device("cpu"), 3)) {
      m.addLora(new PeftSettings("lora", 4, 8, 0.0, null, null), 11);
      try (NoGrad ignored = NoGrad.enter()) {
        for (Parameter p : m.trainableParameters().values()) {
          if (p.getName().contains("lora_B")) {
            NDArray a = p.getArray();
            try (NDArray r = a.getManager().randomNormal(0, 0.05f, a.getShape(), a.getDataType())) {
              a.addi(r);
            }
          }
        }
      }
      m.saveAdapter(folder, STORAGE);
    }
    return folder;
  }

  @Test
  void exportsThePeftFolderAsItIsAndMergedIntoTheBase() throws IOException {
    String adapter = adapter();
    Path peft = dir.resolve("peft");
    PrepareCommandTest.Run r = PrepareCommandTest.runWithoutSharedSession("export", "--model", CausalLM.BUILTIN_TINY,
        "--set", "model.seed=3", "--adapter", adapter, "--output", peft.toString());
    assertEquals(0, r.exit(), r.err());
    for (String f : ModelExport.ADAPTER_FILES) {
      assertArrayEquals(Files.readAllBytes(Path.of(adapter, f)), Files.readAllBytes(peft.resolve(f)), f);
    }
    assertTrue(Files.readString(peft.resolve(CausalLM.ADAPTER_CONFIG)).contains("\"peft_type\" : \"LORA\""));
    assertEquals(0.0, Json.MAPPER.readTree(peft.resolve(ModelExport.MANIFEST).toFile())
        .path("max_log_prob_difference").asDouble());
    PrepareCommandTest.Run again = PrepareCommandTest.runWithoutSharedSession("export", "--model",
        CausalLM.BUILTIN_TINY, "--set", "model.seed=3", "--adapter", adapter, "--output", peft.toString());
    assertTrue(again.out().contains("is up to date"), again.out());

    Path merged = dir.resolve("merged");
    PrepareCommandTest.Run m = PrepareCommandTest.runWithoutSharedSession("export", "--model", CausalLM.BUILTIN_TINY,
        "--set", "model.seed=3", "--adapter", adapter, "--merge", "--output", merged.toString());
    assertEquals(0, m.exit(), m.err());
    for (String f : ModelExport.REQUIRED) {
      assertTrue(Files.exists(merged.resolve(f)), f);
    }
    List<int[]> probes = ModelExport.probes(4096);
    double[] base;
    double[] withAdapter;
    double[] folded;
    try (CausalLM b = CausalLM.load(CausalLM.BUILTIN_TINY, STORAGE, CausalLM.device("cpu"), 3);
         CausalLM f = CausalLM.load(merged.toString(), STORAGE, CausalLM.device("cpu"))) {
      base = ModelExport.sums(b, probes);
      b.loadAdapter(adapter, STORAGE);
      withAdapter = ModelExport.sums(b, probes);
      folded = ModelExport.sums(f, probes);
      assertFalse(f.hasAdapters(), "a plain Hugging Face folder");
    }
    double moved = 0;
    double diff = 0;
    for (int i = 0; i < probes.size(); i++) {
      moved = Math.max(moved, Math.abs(withAdapter[i] - base[i]));
      diff = Math.max(diff, Math.abs(withAdapter[i] - folded[i]));
    }
    System.out.printf("merged vs base + adapter: %.2e nats (the adapter moves the sums by %.2e)%n", diff, moved);
    assertTrue(moved > 0.1, "the adapter changes the model: " + moved);
    assertTrue(diff <= ModelExport.MERGED_FLOAT32_TOLERANCE, "merged = base + adapter: " + diff);

    Path bf16 = dir.resolve("merged-bf16");
    PrepareCommandTest.Run h = PrepareCommandTest.runWithoutSharedSession("export", "--model", CausalLM.BUILTIN_TINY,
        "--set", "model.seed=3", "--adapter", adapter, "--merge", "--dtype", "bf16", "--max-shard-size", "4MB",
        "--output", bf16.toString());
    assertEquals(0, h.exit(), h.err());
    assertTrue(Files.readString(bf16.resolve("config.json")).contains("\"torch_dtype\" : \"bfloat16\""));
    assertTrue(Files.exists(bf16.resolve("model.safetensors.index.json")), "sharded at 4 MB");
  }

  @Test
  void refusesMergeWithoutAnAdapterAndADtypeForThePeftFolder() {
    PrepareCommandTest.Run r = PrepareCommandTest.runWithoutSharedSession("export", "--model", CausalLM.BUILTIN_TINY,
        "--merge", "--output", dir.resolve("x").toString());
    assertEquals(2, r.exit());
    assertTrue(r.err().contains("--merge needs a LoRA adapter"), r.err());
    PrepareCommandTest.Run d = PrepareCommandTest.runWithoutSharedSession("export", "--model", CausalLM.BUILTIN_TINY,
        "--adapter", adapter(), "--dtype", "bf16", "--output", dir.resolve("y").toString());
    assertTrue(d.err().contains("--dtype applies to --merge"), d.err());
  }
}
