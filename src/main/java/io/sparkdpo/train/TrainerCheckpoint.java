package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a training checkpoint holds and under which names: the model folder ({@code model/}, Hugging Face
 * layout) or, for a LoRA run, the adapter folder ({@code adapter/}, PEFT layout; the frozen base is the run's
 * {@code model.path}), the optimizer state ({@code optimizer.safetensors}, of the trained parameters only) and the
 * loop's state ({@code trainer_state.json}: step, epoch, schedule, data cursor, RNG, and for LoRA the base's
 * fingerprint). Resuming from it continues the run exactly.
 */
public final class TrainerCheckpoint {
  public static final String MODEL = "model";
  public static final String ADAPTER = "adapter";
  public static final String OPTIMIZER = "optimizer.safetensors";
  public static final String STATE = "trainer_state.json";

  private TrainerCheckpoint() {}

  /**
   * The loop's state after {@code step} completed updates.
   *
   * @param baseFingerprint LoRA: the fingerprint of the frozen base the adapter was trained on (a resume on another
   *     base is refused); null for full fine-tuning, whose checkpoint holds the whole model
   */
  public record State(
      @JsonProperty("step") long step,
      @JsonProperty("epoch") double epoch,
      @JsonProperty("schedule") LearningRateSchedule schedule,
      @JsonProperty("data") DataCursor data,
      @JsonProperty("rng") SeededRng.State rng,
      @JsonProperty("base_fingerprint") String baseFingerprint) {

    /** The state of a full fine-tuning run. */
    public State(long step, double epoch, LearningRateSchedule schedule, DataCursor data, SeededRng.State rng) {
      this(step, epoch, schedule, data, rng, null);
    }
  }

  /** Files for {@link CheckpointStore#save}; the model was saved to a local scratch folder first. */
  public static Map<String, PayloadWriter> payload(Path localModelFolder, OptimizerState optimizer, State state)
      throws IOException {
    return payload(localModelFolder, MODEL, optimizer, state);
  }

  /**
   * Files for {@link CheckpointStore#save}: {@code folder} is {@link #MODEL} (a Hugging Face folder) or {@link #ADAPTER}
   * (a PEFT adapter folder), saved to a local scratch folder first.
   */
  public static Map<String, PayloadWriter> payload(Path localFolder, String folder, OptimizerState optimizer,
      State state) throws IOException {
    if (optimizer.step() != state.step()) {
      throw new IllegalArgumentException("optimizer state is at step " + optimizer.step() + ", the loop at step "
          + state.step());
    }
    if (!folder.equals(MODEL) && !folder.equals(ADAPTER)) {
      throw new IllegalArgumentException("a checkpoint holds " + MODEL + "/ or " + ADAPTER + "/, not " + folder);
    }
    Map<String, PayloadWriter> files = new LinkedHashMap<>(PayloadWriter.localFolder(localFolder, folder));
    files.put(OPTIMIZER, optimizer::write);
    files.put(STATE, PayloadWriter.json(state));
    return files;
  }

  public static State readState(Checkpoint checkpoint) {
    State state = checkpoint.readJson(STATE, State.class);
    if (state.step() != checkpoint.step()) {
      throw new CheckpointException("checkpoint " + checkpoint.dir() + " holds the state of step " + state.step());
    }
    return state;
  }

  public static OptimizerState readOptimizer(Checkpoint checkpoint) {
    OptimizerState optimizer = checkpoint.read(OPTIMIZER, in -> OptimizerState.read(in, checkpoint.path(OPTIMIZER)));
    if (optimizer.step() != checkpoint.step()) {
      throw new CheckpointException("checkpoint file " + checkpoint.path(OPTIMIZER) + " holds the optimizer of step "
          + optimizer.step() + ", expected " + checkpoint.step());
    }
    return optimizer;
  }

  /**
   * Streams the checkpoint's optimizer state into {@code optimizer} (its moments never pass through the heap whole);
   * the file is verified against its checksum on the way, and a step that disagrees with the checkpoint's fails.
   */
  public static void restoreOptimizer(Checkpoint checkpoint, AdamW optimizer) {
    checkpoint.read(OPTIMIZER, in -> {
      optimizer.restoreState(in, checkpoint.path(OPTIMIZER));
      return null;
    });
    if (optimizer.stepCount() != checkpoint.step()) {
      throw new CheckpointException("checkpoint file " + checkpoint.path(OPTIMIZER) + " holds the optimizer of step "
          + optimizer.stepCount() + ", expected " + checkpoint.step());
    }
  }

  /** The model folder inside the checkpoint, for the model's loader. */
  public static String modelFolder(Checkpoint checkpoint) {
    return checkpoint.path(MODEL);
  }

  /** The PEFT adapter folder inside a LoRA run's checkpoint. */
  public static String adapterFolder(Checkpoint checkpoint) {
    return checkpoint.path(ADAPTER);
  }

  /** Whether the checkpoint holds an adapter (a LoRA run) rather than a whole model. */
  public static boolean holdsAdapter(Checkpoint checkpoint) {
    return checkpoint.files().stream().anyMatch(f -> f.startsWith(ADAPTER + "/"));
  }
}
