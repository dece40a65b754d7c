package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.train.MemoryPlanner;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class PlanMemoryCommandTest {
  @TempDir
  Path dir;

  static Path published(String name) {
    try {
      return Path.of(ModelConfig.class.getResource("configs/" + name + ".json").toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  private record Run(int code, String out, String err) {}

  private static Run run(String... args) {
    CommandLine cli = Main.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cli.setOut(new PrintWriter(out));
    cli.setErr(new PrintWriter(err));
    int code = cli.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void printsTheLlama1BFullFineTuneAsJsonWith16BytesPerParameter() throws Exception {
    Run r = run("plan-memory", "--model", published("llama-3.2-1b").toString(), "--json",
        "--set", "prepare.max_length=1024", "--set", "train.per_device_train_batch_size=1", "--response-length", "1000");
    assertEquals(0, r.code(), r.err());
    JsonNode plan = new ObjectMapper().readTree(r.out());
    assertEquals(1_235_814_400L, plan.get("parameters").longValue());
    long sum = 0;
    long lasting = 0;
    for (JsonNode item : plan.get("items")) {
      sum += item.get("bytes").longValue();
      String key = item.get("key").asText();
      if (key.equals(MemoryPlanner.WEIGHTS) || key.equals(MemoryPlanner.GRADIENTS)
          || key.equals(MemoryPlanner.OPTIMIZER)) {
        lasting += item.get("bytes").longValue();
      }
    }
    assertEquals(16 * 1_235_814_400L, lasting);
    assertEquals(sum, plan.get("total_bytes").longValue());
    assertEquals("full", plan.get("settings").get("method").asText());
    assertEquals(1024, plan.get("settings").get("sequence_length").intValue());
    assertEquals("backward", plan.get("peak_phase").asText());
  }

  @Test
  void saysWhichSettingsWouldFitWhenThePlanDoesNot() {
    Run r = run("plan-memory", "--model", published("llama-3.1-8b").toString(), "--device-memory", "80GB",
        "--set", "train.reference_mode=in_loop", "--set", "model.device=gpu", "--set", "prepare.max_length=1024",
        "--set", "train.per_device_train_batch_size=2", "--response-length", "256");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("does NOT fit in 80.00 GB"), r.out());
    assertTrue(r.out().contains("peft lora r=16 + gradient_checkpointing true: "), r.out());
    assertTrue(r.out().contains("in-loop copy: 8,030,261,248 parameters x 4 bytes"), r.out());
  }

  @Test
  void readsAModelFolderAndReportsAFit() throws Exception {
    Files.copy(published("qwen2.5-0.5b"), dir.resolve("config.json"));
    Run r = run("plan-memory", "--model", dir.toString(), "--device-memory", "80GB", "--workers", "2");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("494,032,768 parameters"), r.out());
    assertTrue(r.out().contains("fits in 80.00 GB"), r.out());
    assertTrue(r.out().matches("(?s).*allreduce_buffers +0\\.03 .*"), r.out()); // one 25 MiB bucket at W = 2
  }

  @Test
  void refusesABadSizeNamingTheOption() {
    Run r = run("plan-memory", "--model", published("llama-3.2-1b").toString(), "--device-memory", "lots");
    assertEquals(Main.EXIT_CONFIG, r.code());
    assertTrue(r.err().contains("--device-memory"), r.err());
    assertFalse(r.err().contains("shard"), r.err());
  }

  @Test
  void stageRewardPlansTheRewardSectionsClassifierStep() throws Exception {
    Run r = run("plan-memory", "--stage", "reward", "--model", published("llama-3.2-1b").toString(), "--json",
        "--set", "prepare.max_length=1024", "--set", "reward.per_device_train_batch_size=2");
    assertEquals(0, r.code(), r.err());
    JsonNode plan = new ObjectMapper().readTree(r.out());
    assertEquals("reward", plan.get("stage").asText());
    assertEquals(1_235_814_400L + 2048, plan.get("parameters").longValue());
    assertEquals(2, plan.get("settings").get("per_device_train_batch_size").intValue());
    assertEquals("none", plan.get("settings").get("reference").asText());
    assertEquals("score head forward", plan.get("phases").get(1).get("name").asText());
    Run text = run("plan-memory", "--stage", "reward", "--model", published("llama-3.2-1b").toString());
    assertTrue(text.out().contains("reward model (score head, Bradley-Terry loss)"), text.out());
    Run bad = run("plan-memory", "--stage", "sft", "--model", published("llama-3.2-1b").toString());
    assertFalse(bad.code() == 0);
    assertTrue(bad.err().contains("--stage must be train or reward"), bad.err());
  }
}
