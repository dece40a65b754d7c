package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a training checkpoint holds and under which names: the model folder ({@code model/}, Hugging Face
 * layout), the optimizer state ({@code optimizer.safetensors}) and the loop's state ({@code trainer_state.json}:
 * step, epoch, schedule, data cursor, RNG, and with float16 mixed precision the loss scaler). Resuming from it
 * continues the run exactly.
 */
public final class TrainerCheckpoint {
  public static final String MODEL = "model";
  public static final String OPTIMIZER = "optimizer.safetensors";
  public static final String STATE = "trainer_state.json";

  private TrainerCheckpoint() {}

  /**
   * The loop's state after {@code step} completed steps; {@code lossScale} is the float16 loss scaler's (null
   * without float16), whose skipped steps the optimizer did not count.
   */
  public record State(
      @JsonProperty("step") long step,
      @JsonProperty("epoch") double epoch,
      @JsonProperty("schedule") LearningRateSchedule schedule,
      @JsonProperty("data") DataCursor data,
      @JsonProperty("rng") SeededRng.State rng,
      @JsonProperty("loss_scale") LossScaler.State lossScale) {

    /** Without float16 loss scaling. */
    public State(long step, double epoch, LearningRateSchedule schedule, DataCursor data, SeededRng.State rng) {
      this(step, epoch, schedule, data, rng, null);
    }

    /** Updates the optimizer applied: steps minus the ones float16 loss scaling skipped. */
    public long updates() {
      return step - (lossScale == null ? 0 : lossScale.skippedSteps());
    }
  }

  /** Files for {@link CheckpointStore#save}; the model was saved to a local scratch folder first. */
  public static Map<String, PayloadWriter> payload(Path localModelFolder, OptimizerState optimizer, State state)
      throws IOException {
    if (optimizer.step() != state.updates()) {
      throw new IllegalArgumentException("optimizer state is at step " + optimizer.step() + ", the loop at step "
          + state.step() + (state.updates() != state.step() ? " with " + (state.step() - state.updates())
          + " skipped" : ""));
    }
    Map<String, PayloadWriter> files = new LinkedHashMap<>(PayloadWriter.localFolder(localModelFolder, MODEL));
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
    restoreOptimizer(checkpoint, optimizer, checkpoint.step());
  }

  /** As {@link #restoreOptimizer(Checkpoint, AdamW)}, for an optimizer that took {@code updates} steps (see State). */
  public static void restoreOptimizer(Checkpoint checkpoint, AdamW optimizer, long updates) {
    checkpoint.read(OPTIMIZER, in -> {
      optimizer.restoreState(in, checkpoint.path(OPTIMIZER));
      return null;
    });
    if (optimizer.stepCount() != updates) {
      throw new CheckpointException("checkpoint file " + checkpoint.path(OPTIMIZER) + " holds the optimizer of step "
          + optimizer.stepCount() + ", expected " + updates);
    }
  }

  /** The model folder inside the checkpoint, for the model's loader. */
  public static String modelFolder(Checkpoint checkpoint) {
    return checkpoint.path(MODEL);
  }
}
