package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code spark-dpo score --relabel} then {@code prepare} on the relabelled pairs (another DPO round on reward-model
 * labels), and {@code spark-dpo best-of-n} with the oracle, from the command line.
 */
class ScoreCommandTest {
  @TempDir
  Path dir;

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void scoreRelabelsForPrepareAndBestOfNWritesItsPoints() throws Exception {
    Path rm = dir.resolve("rm");
    try (CausalLM m = CausalLM.loadScorer(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu(), 3)) {
      m.save(rm.toString(), Storage.local(), DataType.FLOAT32);
    }
    StringBuilder rows = new StringBuilder();
    String[] prompts = {"The whale", "Call me", "The sea", "At dawn"};
    String[] continuations = {"swam far away", "was white", "sank the ship and all its crew", "dived"};
    for (String p : prompts) {
      for (String c : continuations) {
        rows.append("{\"prompt\": \"").append(p).append("\", \"completion\": \"").append(c).append("\"}\n");
      }
    }
    Path input = dir.resolve("samples.jsonl");
    Files.writeString(input, rows.toString());

    Path out = dir.resolve("scored");
    String[] args = {"score", "--model", rm.toString(), "--input", input.toString(), "--output", out.toString(),
        "--relabel", "--set", "prepare.template=plain", "--set", "spark.master=local[2]"};
    PrepareCommandTest.Run r = PrepareCommandTest.run(args);
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.out().contains("score: 16 rows scored by " + rm + " (reward_model)"), r.out());
    assertTrue(r.out().contains("pairs 4; dropped: 0 ties"), r.out());
    JsonNode manifest = Json.MAPPER.readTree(out.resolve("manifest.json").toFile());
    assertEquals("plain", manifest.path("encoding").path("template").asText());
    assertEquals(4, Files.readAllLines(out.resolve("pairs.jsonl")).size());
    PrepareCommandTest.Run again = PrepareCommandTest.run(args);
    assertTrue(again.out().contains("is up to date"), again.out());

    // The relabelled pairs are TRL rows prepare reads: a DPO round on reward-model labels starts here.
    PrepareCommandTest.Run prep = PrepareCommandTest.run("prepare", "--input", out.resolve("pairs.jsonl").toString(),
        "--output", dir.resolve("prepared").toString(), "--set", "prepare.format=trl");
    assertEquals(0, prep.exit(), prep.err());
    assertEquals(4, Json.MAPPER.readTree(dir.resolve("prepared/manifest.json").toFile()).path("counts")
        .path("kept").asInt());

    // A folder that is not a reward model: refused before anything is written.
    PrepareCommandTest.Run bad = PrepareCommandTest.run("score", "--model", dir.resolve("prepared").toString(),
        "--input", input.toString(), "--output", dir.resolve("never").toString());
    assertEquals(1, bad.exit());
    assertTrue(bad.err().contains("holds no config.json"), bad.err());
    assertFalse(Files.exists(dir.resolve("never")));

    Path bon = dir.resolve("bon");
    PrepareCommandTest.Run b = PrepareCommandTest.run("best-of-n", "--model", "builtin:tiny", "--prompts",
        "sample-data/corpus/moby-dick/heldout", "--output", bon.toString(), "--n", "1,2", "--num-prompts", "3",
        "--set", "evaluate.max_new_tokens=6");
    assertEquals(0, b.exit(), b.err());
    assertTrue(b.out().contains("best-of-n: 3 prompts x 2 samples; selector oracle:afinn-111 (oracle)"), b.out());
    assertTrue(b.out().contains("n=2"), b.out());
    JsonNode points = Json.MAPPER.readTree(bon.resolve("best_of_n.json").toFile()).path("points");
    assertEquals(2, points.size());
    assertEquals(Math.log(2) - 0.5, points.get(1).path("kl").asDouble(), 1e-12);
  }
}
