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

    PrepareCommandTest.Run headless = PrepareCommandTest.run("reward", "--data", prepared.toString(), "--output",
        dir.resolve("never").toString(), "--set", "reward.peft.type=lora", "--set",
        "reward.peft.modules_to_save=[lm_head]");
    assertEquals(2, headless.exit(), "a bad setting is a usage error");
    assertTrue(headless.err().contains("reward.peft.modules_to_save"), headless.err());
    assertFalse(Files.exists(dir.resolve("never")));
  }

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void aLoraRewardModelExportsItsSeqClsAdapterAndTheMergedClassifier() throws Exception {
    Path project = Path.of(System.getProperty("project.basedir", "."));
    Path prepared = dir.resolve("prepared");
    PrepareCommandTest.Run prep = PrepareCommandTest.run("prepare", "--input",
        project.resolve("sample-data/preferences/trl-sample.jsonl").toString(), "--output", prepared.toString());
    assertEquals(0, prep.exit(), prep.err());
    Path out = dir.resolve("reward-lora");
    PrepareCommandTest.Run r = PrepareCommandTest.run("reward", "--data", prepared.toString(), "--model",
        "builtin:tiny", "--output", out.toString(), "--max-steps", "2", "--set", "reward.per_device_train_batch_size=2",
        "--set", "reward.peft.type=lora", "--set", "reward.peft.r=4", "--set", "spark.master=local[2]");
    assertEquals(0, r.exit(), r.err());
    JsonNode adapter = Json.MAPPER.readTree(out.resolve("adapter/adapter_config.json").toFile());
    assertEquals("SEQ_CLS", adapter.get("task_type").asText());
    assertEquals(List.of("classifier", "score"), Json.MAPPER.convertValue(adapter.get("modules_to_save"), List.class));
    assertEquals(4, adapter.get("r").asInt());
    try (var in = Files.newInputStream(out.resolve("adapter/adapter_model.safetensors"))) {
      List<String> names = io.sparkdpo.model.Safetensors.readHeader(in, "adapter", Files.size(
          out.resolve("adapter/adapter_model.safetensors"))).entries().stream().map(e -> e.name()).toList();
      assertTrue(names.contains("base_model.model.score.weight"), names.toString());
      assertTrue(names.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), names.toString());
      assertEquals(1 + 4 * 7 * 2, names.size(), "the score head and lora_A/lora_B of 7 projections in 4 layers");
    }
    JsonNode merged = Json.MAPPER.readTree(out.resolve("model/config.json").toFile());
    assertEquals("LlamaForSequenceClassification", merged.get("architectures").get(0).asText());
    assertTrue(Files.exists(out.resolve("model/tokenizer.json")), "the tokenizer goes with the merged model");
  }
}
