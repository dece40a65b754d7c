package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.LrSchedulerType;
import io.sparkdpo.io.Storage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerCheckpointTest {
  @TempDir
  Path dir;

  @Test
  void roundTripsModelFilesOptimizerAndLoopState() throws Exception {
    Path model = dir.resolve("scratch/model");
    Files.createDirectories(model);
    Files.writeString(model.resolve("config.json"), "{\"vocab_size\":4096}");
    Files.write(model.resolve("model.safetensors"), new byte[] {0, 1, 2, 3});
    LinkedHashMap<String, OptimizerState.Tensor> tensors = new LinkedHashMap<>();
    tensors.put("w.exp_avg", new OptimizerState.Tensor(new long[] {2}, new float[] {0.5f, Float.MIN_VALUE}));
    tensors.put("w.exp_avg_sq", new OptimizerState.Tensor(new long[] {2}, new float[] {1e-30f, 3f}));
    OptimizerState optimizer = new OptimizerState(5, tensors);
    SeededRng rng = new SeededRng(42);
    rng.nextLong();
    TrainerCheckpoint.State state = new TrainerCheckpoint.State(5, 0.625,
        new LearningRateSchedule(LrSchedulerType.COSINE, 1e-6, 2, 8),
        new DataCursor(List.of(new ShardCursor("train/shard-00000.parquet", 64, 42, 0, 40))), rng.state());

    CheckpointStore store = new CheckpointStore(Storage.local(), dir.resolve("run").toString(), 3);
    store.save(5, TrainerCheckpoint.payload(model, optimizer, state));

    Checkpoint c = store.latestValid().orElseThrow();
    assertEquals(state, TrainerCheckpoint.readState(c));
    assertEquals(optimizer, TrainerCheckpoint.readOptimizer(c));
    assertEquals("{\"vocab_size\":4096}",
        Storage.local().readString(Storage.join(TrainerCheckpoint.modelFolder(c), "config.json")));
    assertTrue(TrainerCheckpoint.modelFolder(c).endsWith("/run/checkpoint-5"), "the model sits in the folder itself");
    assertEquals(java.util.Set.of("config.json", "model.safetensors", "optimizer.safetensors", "spark_dpo_state.json"),
        c.files());
    assertEquals(java.util.Map.of("config.json", "config.json", "model.safetensors", "model.safetensors"),
        TrainerCheckpoint.modelFiles(c));
    assertFalse(TrainerCheckpoint.holdsAdapter(c));
    String json = Files.readString(dir.resolve("run/checkpoint-5/spark_dpo_state.json"));
    assertTrue(json.contains("\"base_lr\" : 1.0E-6") && json.contains("\"type\" : \"cosine\""), json);
  }

  /** A checkpoint as the earlier version wrote it: model/ or adapter/ sub-folder, the loop state as trainer_state.json. */
  @Test
  void readsCheckpointsOfTheEarlierLayout() throws Exception {
    TrainerCheckpoint.State state = new TrainerCheckpoint.State(3, 0.375,
        new LearningRateSchedule(LrSchedulerType.LINEAR, 1e-6, 0, 8), new DataCursor(List.of()),
        new SeededRng(7).state());
    OptimizerState optimizer = new OptimizerState(3, new LinkedHashMap<>());
    LinkedHashMap<String, PayloadWriter> files = new LinkedHashMap<>();
    files.put("adapter/adapter_config.json", PayloadWriter.bytes("{\"r\":8}".getBytes()));
    files.put("adapter/adapter_model.safetensors", PayloadWriter.bytes(new byte[] {4, 5}));
    files.put(TrainerCheckpoint.OPTIMIZER, optimizer::write);
    files.put("trainer_state.json", PayloadWriter.json(state));
    CheckpointStore store = new CheckpointStore(Storage.local(), dir.resolve("run").toString(), null);
    store.save(3, files);
    Files.createDirectories(dir.resolve("run/checkpoints"));
    Files.move(dir.resolve("run/checkpoint-3"), dir.resolve("run/checkpoints/step-3"));

    Checkpoint c = store.resumePoint(false).orElseThrow();
    assertTrue(TrainerCheckpoint.isLegacy(c));
    assertEquals(state, TrainerCheckpoint.readState(c));
    assertTrue(TrainerCheckpoint.holdsAdapter(c));
    assertTrue(TrainerCheckpoint.adapterFolder(c).endsWith("/run/checkpoints/step-3/adapter"));
    assertEquals(java.util.Map.of("adapter/adapter_config.json", "adapter_config.json",
        "adapter/adapter_model.safetensors", "adapter_model.safetensors"), TrainerCheckpoint.modelFiles(c));
  }

  @Test
  void refusesModelOrObjectiveFilesUnderTheTrainersNames() throws Exception {
    Path model = dir.resolve("scratch/bad");
    Files.createDirectories(model);
    Files.writeString(model.resolve("trainer_state.json"), "{}");
    OptimizerState optimizer = new OptimizerState(1, new LinkedHashMap<>());
    TrainerCheckpoint.State state = new TrainerCheckpoint.State(1, 1.0,
        new LearningRateSchedule(LrSchedulerType.LINEAR, 1e-6, 0, 8), new DataCursor(List.of()),
        new SeededRng(1).state());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TrainerCheckpoint.payload(model, optimizer, state));
    assertTrue(e.getMessage().contains("holds trainer_state.json"), e.getMessage());
    Path empty = dir.resolve("scratch/empty");
    Files.createDirectories(empty);
    IllegalArgumentException objective = assertThrows(IllegalArgumentException.class,
        () -> TrainerCheckpoint.payload(empty, optimizer, state, java.util.Map.of("extra.json", PayloadWriter.json(1))));
    assertTrue(objective.getMessage().contains("objective checkpoint file extra.json"), objective.getMessage());
  }

  @Test
  void refusesOptimizerAndLoopOfDifferentSteps() {
    OptimizerState optimizer = new OptimizerState(4, new LinkedHashMap<>());
    TrainerCheckpoint.State state = new TrainerCheckpoint.State(5, 1.0,
        new LearningRateSchedule(LrSchedulerType.LINEAR, 1e-6, 0, 8), new DataCursor(List.of()),
        new SeededRng(1).state());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TrainerCheckpoint.payload(dir, optimizer, state));
    assertTrue(e.getMessage().contains("optimizer state is at step 4, the loop at step 5"), e.getMessage());
  }
}
