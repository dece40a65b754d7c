package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.testing.SharedSpark;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code generate.labeler}: a reward model labels generate's pairs instead of the ground-truth reward. */
class GenerateLabelerTest {
  @TempDir
  Path dir;

  @Test
  void aRewardModelLabelsThePairsAndTheGroundTruthStaysInTheSamples() throws Exception {
    Path rm = dir.resolve("rm");
    try (CausalLM m = CausalLM.loadScorer(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu(), 17)) {
      m.save(rm.toString(), Storage.local(), DataType.FLOAT32);
    }
    long seed = ReferenceFixtures.freshSeed();
    GenerateJob.Result plain = GenerateJobTest.generate(GenerateJobTest.config(seed), dir.resolve("plain"));
    GenerateJob.Result labelled = GenerateJobTest.generate(GenerateJobTest.config(seed, "generate.labeler=" + rm,
        "prepare.template=plain", "prepare.add_eos=false"), dir.resolve("labelled"));
    assertNotEquals(plain.manifest().fingerprint(), labelled.manifest().fingerprint());
    assertFalse(Arrays.asList(SharedSpark.get().read().parquet(dir.resolve("plain/samples").toString()).columns())
        .contains("labeler_score"), "without a labeler the samples are as before");

    Map<String, Map<String, Double>> score = new HashMap<>();
    for (Row r : SharedSpark.get().read().parquet(dir.resolve("labelled/samples").toString()).collectAsList()) {
      String text = r.getString(r.fieldIndex("continuation"));
      assertEquals(-text.length(), r.getDouble(r.fieldIndex("reward")), 0.0, "the ground truth is kept");
      score.computeIfAbsent(r.getString(r.fieldIndex("prompt")), k -> new HashMap<>())
          .put(text, r.getDouble(r.fieldIndex("labeler_score")));
    }
    List<JsonNode> pairs = GenerateJobTest.lines(dir.resolve("labelled/pairs.jsonl"));
    assertTrue(pairs.size() >= 4, "an untrained head still orders random continuations: " + pairs.size());
    boolean differs = false;
    for (JsonNode p : pairs) {
      Map<String, Double> s = score.get(p.get("prompt").asText());
      assertTrue(s.get(p.get("chosen").asText()) > s.get(p.get("rejected").asText()), p.toString());
      differs |= p.get("chosen").asText().length() > p.get("rejected").asText().length();
    }
    assertTrue(differs, "some pair prefers the longer continuation, which the length reward never would");
    assertFalse(Files.readString(dir.resolve("plain/pairs.jsonl")).equals(
        Files.readString(dir.resolve("labelled/pairs.jsonl"))));
    assertEquals(rm.toString(), Json.MAPPER.readTree(dir.resolve("labelled/manifest.json").toFile())
        .path("config").path("generate").path("labeler").asText());
  }
}
