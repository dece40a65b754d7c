package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.PayloadWriter;
import io.sparkdpo.train.TrainerCheckpoint;
import io.sparkdpo.train.TrainingFixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code spark-dpo train} leaves {@code checkpoint-N/} folders as the Hugging Face Trainer does (model files at the top,
 * optimizer and loop state beside them, transformers' trainer_state.json), and a run whose checkpoints are of the
 * earlier {@code checkpoints/step-N/} layout resumes from them to the same bits.
 */
class HfCheckpointLayoutTest {
  @TempDir
  Path dir;

  /** The field set of transformers 4.56's TrainerState (trainer_callback.py). */
  private static final TreeSet<String> TRAINER_STATE_FIELDS = new TreeSet<>(List.of("epoch", "global_step",
      "max_steps", "logging_steps", "eval_steps", "save_steps", "train_batch_size", "num_train_epochs",
      "num_input_tokens_seen", "total_flos", "log_history", "best_metric", "best_global_step", "best_model_checkpoint",
      "is_local_process_zero", "is_world_process_zero", "is_hyper_param_search", "trial_name", "trial_params",
      "stateful_callbacks"));

  private static List<String> trainArgs(String data, String model, Path output) {
    return List.of("train", "--data", data, "--model", model, "--output", output.toString(), "--max-steps", "6",
        "--set", "train.reference_mode=in_loop", "--set", "train.save_steps=2", "--set", "train.eval_steps=2",
        "--set", "train.per_device_train_batch_size=4", "--set", "train.learning_rate=0.002",
        "--set", "train.logging_steps=1", "--set", "spark.master=local[2]");
  }

  private static List<String> names(Path folder) throws IOException {
    try (Stream<Path> s = Files.list(folder)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void checkpointFoldersAreTheTrainersAndTheEarlierLayoutStillResumes() throws Exception {
    String model = TrainingFixtures.writeModel(dir.resolve("model"), TrainingFixtures.SMALL, 11);
    List<PreparedPair> pairs = TrainingFixtures.pairs("p", 24, TrainingFixtures.SMALL.vocabSize(), 12);
    String data = TrainingFixtures.writePrepared(dir.resolve("data"), List.of(pairs), pairs.subList(0, 4), null);
    Path run = dir.resolve("run");
    PrepareCommandTest.Run r = PrepareCommandTest.run(trainArgs(data, model, run).toArray(String[]::new));
    assertEquals(0, r.exit(), r.err());

    List<String> top = names(run);
    assertTrue(top.containsAll(List.of("checkpoint-2", "checkpoint-4", "checkpoint-6")), top.toString());
    assertFalse(top.contains("checkpoints"), top.toString());
    Path last = run.resolve("checkpoint-6");
    List<String> files = names(last);
    for (String f : List.of("config.json", "model.safetensors", "generation_config.json",
        "optimizer.safetensors", "spark_dpo_state.json", "trainer_state.json", "checksums.json", "COMMITTED")) {
      assertTrue(files.contains(f), f + " in " + files);
    }
    assertFalse(files.contains("model"), "no model/ sub-folder");
    // The model loads from the checkpoint folder itself, and is the model the run exported (float32: the same file).
    assertEquals(0.0, TrainingFixtures.maxDifference(TrainingFixtures.parameters(last.toString(), 0),
        TrainingFixtures.parameters(run.resolve("model").toString(), 0)));
    assertArrayEquals(Files.readAllBytes(last.resolve("model.safetensors")),
        Files.readAllBytes(run.resolve("model/model.safetensors")));
    assertFalse(Files.exists(run.resolve("model/optimizer.safetensors")), "the export copies the model alone");

    JsonNode state = Json.MAPPER.readTree(last.resolve("trainer_state.json").toFile());
    TreeSet<String> keys = new TreeSet<>();
    state.fieldNames().forEachRemaining(keys::add);
    assertEquals(TRAINER_STATE_FIELDS, keys);
    assertEquals(6, state.get("global_step").asInt());
    assertEquals(6, state.get("max_steps").asInt());
    assertEquals(1, state.get("logging_steps").asInt());
    assertEquals(2, state.get("eval_steps").asInt());
    assertEquals(2, state.get("save_steps").asInt());
    assertEquals(4, state.get("train_batch_size").asInt());
    assertEquals(1, state.get("num_train_epochs").asInt(), "6 steps x 4 of 24 pairs: one epoch");
    assertEquals(1.0, state.get("epoch").asDouble());
    assertTrue(state.get("stateful_callbacks").get("TrainerControl").get("args").get("should_training_stop")
        .asBoolean());

    // log_history is metrics.jsonl in transformers' names: train records as they are, eval/x as eval_x.
    List<Map<String, Object>> records = MetricsLog.readAll(Storage.local(), run.toString());
    JsonNode history = state.get("log_history");
    assertEquals(6 + 3, records.size());
    assertEquals(records.size(), history.size());
    double bestLoss = Double.POSITIVE_INFINITY;
    long bestStep = -1;
    for (int i = 0; i < records.size(); i++) {
      Map<String, Object> record = records.get(i);
      JsonNode entry = history.get(i);
      assertEquals(((Number) record.get(MetricNames.STEP)).longValue(), entry.get("step").asLong());
      for (Map.Entry<String, Object> e : record.entrySet()) {
        String key = e.getKey().startsWith("eval/") ? "eval_" + e.getKey().substring(5) : e.getKey();
        assertEquals(((Number) e.getValue()).doubleValue(), entry.get(key).asDouble(), key + " at entry " + i);
      }
      if (record.containsKey("eval/loss")) {
        assertTrue(entry.has("epoch"), "evaluation entries carry the epoch, as the Trainer's do");
        double loss = ((Number) record.get("eval/loss")).doubleValue();
        if (loss < bestLoss) {
          bestLoss = loss;
          bestStep = entry.get("step").asLong();
        }
      }
    }
    // metric_for_best_model defaults to loss (eval_loss, smaller is better).
    assertEquals(bestLoss, state.get("best_metric").asDouble());
    assertEquals(bestStep, state.get("best_global_step").asLong());
    assertEquals(Storage.join(run.toString(), "checkpoint-" + bestStep), state.get("best_model_checkpoint").asText());

    // A run folder of the earlier layout: checkpoints/step-2 and step-4 (model/ inside, the loop state as
    // trainer_state.json), stopped after step 4. It resumes from step 4 and ends with the bits of the straight run.
    Path old = dir.resolve("old");
    copy(run, old);
    for (String gone : List.of("checkpoint-6", "model", "metrics.jsonl")) {
      delete(old.resolve(gone));
    }
    toEarlierLayout(old, 2);
    toEarlierLayout(old, 4);
    for (Path part : names(old.resolve("metrics")).stream().map(n -> old.resolve("metrics").resolve(n)).toList()) {
      List<String> kept = new ArrayList<>();
      for (String line : Files.readAllLines(part)) {
        if (Json.LINES.readTree(line).get("step").asLong() <= 4) {
          kept.add(line + "\n");
        }
      }
      Files.writeString(part, String.join("", kept));
    }
    PrepareCommandTest.Run resumed = PrepareCommandTest.run(trainArgs(data, model, old).toArray(String[]::new));
    assertEquals(0, resumed.exit(), resumed.err());
    assertArrayEquals(Files.readAllBytes(run.resolve("model/model.safetensors")),
        Files.readAllBytes(old.resolve("model/model.safetensors")), "bit-identical parameters");
    assertEquals(List.of(2L, 4L, 6L), new CheckpointStore(Storage.local(), old.toString(), null).committedSteps());
    assertTrue(Files.exists(old.resolve("checkpoints/step-4/COMMITTED")));
    JsonNode after = Json.MAPPER.readTree(old.resolve("checkpoint-6/trainer_state.json").toFile());
    assertEquals(history.size(), after.get("log_history").size(), "rebuilt from metrics.jsonl up to step 4");
    for (int i = 0; i < history.size(); i++) {
      for (String key : List.of("step", "loss", "eval_loss", "rewards/chosen", "eval_rewards/margins", "epoch")) {
        assertEquals(history.get(i).get(key), after.get("log_history").get(i).get(key), key + " at entry " + i);
      }
    }
    assertEquals(state.get("best_global_step"), after.get("best_global_step"));
  }

  /** Rewrites {@code run/checkpoint-N} as the earlier version wrote it, committed: {@code run/checkpoints/step-N}. */
  private static void toEarlierLayout(Path run, long step) throws IOException {
    CheckpointStore store = new CheckpointStore(Storage.local(), run.toString(), null);
    Checkpoint c = store.open(step);
    Map<String, PayloadWriter> files = new LinkedHashMap<>();
    for (String name : c.files()) {
      byte[] bytes = c.read(name);
      if (name.equals(TrainerCheckpoint.STATE)) {
        files.put("trainer_state.json", PayloadWriter.bytes(bytes));
      } else if (name.equals(TrainerCheckpoint.OPTIMIZER)) {
        files.put(name, PayloadWriter.bytes(bytes));
      } else if (!name.equals(TrainerCheckpoint.TRAINER_STATE)) {
        files.put("model/" + name, PayloadWriter.bytes(bytes));
      }
    }
    Path scratch = run.resolveSibling("scratch-" + step);
    new CheckpointStore(Storage.local(), scratch.toString(), null).save(step, files);
    Files.createDirectories(run.resolve("checkpoints"));
    Files.move(scratch.resolve("checkpoint-" + step), run.resolve("checkpoints/step-" + step));
    delete(run.resolve("checkpoint-" + step));
  }

  private static void copy(Path from, Path to) throws IOException {
    try (Stream<Path> walk = Files.walk(from)) {
      for (Path p : walk.toList()) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else {
          Files.copy(p, target);
        }
      }
    }
  }

  private static void delete(Path path) throws IOException {
    if (!Files.exists(path)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(path)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
