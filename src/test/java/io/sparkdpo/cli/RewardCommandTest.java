package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code spark-dpo reward} from the command line: prepare the sample pairs, train the built-in tiny model's scorer. */
class RewardCommandTest {
  @TempDir
  Path dir;

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void rewardOnPreparedPairsExportsASequenceClassifierAndARerunIsUpToDate() throws Exception {
    Path project = Path.of(System.getProperty("project.basedir", "."));
    JobConfig conf = ConfigLoader.load(project.resolve("conf/reward.yaml"), List.of());
    assertEquals(0.01, conf.reward().centerRewardsCoefficient());
    Path prepared = dir.resolve("prepared");
    PrepareCommandTest.Run prep = PrepareCommandTest.run("prepare", "--input",
        project.resolve("sample-data/preferences/trl-sample.jsonl").toString(), "--output", prepared.toString());
    assertEquals(0, prep.exit(), prep.err());

    Path out = dir.resolve("reward");
    List<String> args = List.of("reward", "--data", prepared.toString(), "--model", "builtin:tiny", "--output",
        out.toString(), "--max-steps", "3", "--set", "reward.per_device_train_batch_size=2",
        "--set", "spark.master=local[2]");
    PrepareCommandTest.Run r = PrepareCommandTest.run(args.toArray(String[]::new));
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.out().contains("reward: 3 steps done in 1 attempt(s)"), r.out());
    assertTrue(r.out().contains("eval/accuracy "), r.out());
    JsonNode config = Json.MAPPER.readTree(out.resolve("model/config.json").toFile());
    assertEquals("LlamaForSequenceClassification", config.get("architectures").get(0).asText());
    assertTrue(Files.exists(out.resolve("model/tokenizer.json")), "the tokenizer goes with the model");

    PrepareCommandTest.Run again = PrepareCommandTest.run(args.toArray(String[]::new));
    assertEquals(0, again.exit(), again.err());
    assertTrue(again.out().contains("is up to date"), again.out());

    PrepareCommandTest.Run lora = PrepareCommandTest.run("reward", "--data", prepared.toString(), "--output",
        dir.resolve("never").toString(), "--set", "reward.peft.type=lora");
    assertEquals(2, lora.exit(), "a bad setting is a usage error");
    assertTrue(lora.err().contains("reward.peft"), lora.err());
    assertFalse(Files.exists(dir.resolve("never")));
  }
}
