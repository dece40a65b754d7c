package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
    String json = Files.readString(dir.resolve("run/checkpoints/step-5/trainer_state.json"));
    assertTrue(json.contains("\"base_lr\" : 1.0E-6") && json.contains("\"type\" : \"cosine\""), json);
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
