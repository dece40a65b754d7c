package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.model.CausalLM;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What a training checkpoint holds and under which names, in the layout of a Hugging Face Trainer's
 * {@code checkpoint-N/}: the model in Hugging Face layout directly in the folder ({@code config.json},
 * {@code model.safetensors} or its shards and index, tokenizer and generation config) or, for a LoRA run, the PEFT
 * adapter files ({@code adapter_config.json}, {@code adapter_model.safetensors}; the frozen base is the run's
 * {@code model.path}), so {@code from_pretrained("RUN/checkpoint-N")} loads it; beside it the optimizer state
 * ({@code optimizer.safetensors}, of the trained parameters only), transformers' {@code trainer_state.json}
 * ({@link HfTrainerState}, added by the loop that saves) and the loop's own state ({@code spark_dpo_state.json}: step, epoch, learning-rate
 * schedule, data cursor, RNG, with float16 mixed precision the loss scaler, and for LoRA the base's fingerprint), plus
 * the objective's state when it has one (bco_pair's running mean). Resuming from it continues the run exactly.
 *
 * <p>Checkpoints of the earlier layout ({@code checkpoints/step-N/} with {@code model/} or {@code adapter/} and the
 * loop state under the name {@code trainer_state.json}) are read as well: a checkpoint without
 * {@code spark_dpo_state.json} is one of those.
 */
public final class TrainerCheckpoint {
  /** The earlier layout's model sub-folder. */
  public static final String MODEL = "model";
  /** The earlier layout's adapter sub-folder. */
  public static final String ADAPTER = "adapter";
  public static final String OPTIMIZER = "optimizer.safetensors";
  /** The loop's own state (named so that transformers' file can take {@link #TRAINER_STATE}). */
  public static final String STATE = "spark_dpo_state.json";
  /** transformers' TrainerState; in the earlier layout this name held the loop's state. */
  public static final String TRAINER_STATE = "trainer_state.json";
  /** Files beside the model in a checkpoint folder: everything else there is the model's (or adapter's). */
  static final Set<String> LOOP_FILES = Set.of(OPTIMIZER, STATE, TRAINER_STATE, DpoObjective.BCO_RUNNING_MEAN,
      MetricsWindow.FILE, PpoTrainer.VALUE_HEAD);

  private TrainerCheckpoint() {}

  /**
   * The loop's state after {@code step} completed steps; {@code lossScale} is the float16 loss scaler's (null
   * without float16), whose skipped steps the optimizer did not count.
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
      @JsonProperty("loss_scale") LossScaler.State lossScale,
      @JsonProperty("base_fingerprint") String baseFingerprint) {

    /** Without float16 loss scaling, full fine-tuning. */
    public State(long step, double epoch, LearningRateSchedule schedule, DataCursor data, SeededRng.State rng) {
      this(step, epoch, schedule, data, rng, null, null);
    }

    /** Full fine-tuning. */
    public State(long step, double epoch, LearningRateSchedule schedule, DataCursor data, SeededRng.State rng,
        LossScaler.State lossScale) {
      this(step, epoch, schedule, data, rng, lossScale, null);
    }

    /** Updates the optimizer applied: steps minus the ones float16 loss scaling skipped. */
    public long updates() {
      return step - (lossScale == null ? 0 : lossScale.skippedSteps());
    }
  }

  /** Deletes a local folder a checkpoint's model was staged in, once its payload has been written. */
  public static void deleteStaging(Path folder) {
    try (Stream<Path> walk = Files.walk(folder)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + folder + ": " + e.getMessage(), e);
    }
  }

  /**
   * Files for {@link CheckpointStore#save} without the objective's own state: the model (or PEFT adapter) saved to a
   * local scratch folder first, the optimizer and the loop state.
   */
  public static Map<String, PayloadWriter> payload(Path localModelFolder, OptimizerState optimizer, State state)
      throws IOException {
    return payload(localModelFolder, optimizer, state, Map.of());
  }

  /**
   * Files for {@link CheckpointStore#save}: the files of {@code localModelFolder} (a Hugging Face model folder or a
   * PEFT adapter folder, saved to a local scratch folder first) at the top, the optimizer, the loop state and the
   * objective's files ({@link Objective#checkpointFiles}). transformers' trainer_state.json is added by the loop that
   * saves (it holds the log history).
   */
  public static Map<String, PayloadWriter> payload(Path localModelFolder, OptimizerState optimizer, State state,
      Map<String, PayloadWriter> objectiveFiles) throws IOException {
    if (optimizer.step() != state.updates()) {
      throw new IllegalArgumentException("optimizer state is at step " + optimizer.step() + ", the loop at step "
          + state.step() + (state.updates() != state.step() ? " with " + (state.step() - state.updates())
          + " skipped" : ""));
    }
    Map<String, PayloadWriter> files = new LinkedHashMap<>(PayloadWriter.localFolder(localModelFolder, ""));
    for (String name : files.keySet()) {
      if (LOOP_FILES.contains(name)) {
        throw new IllegalArgumentException("the model folder " + localModelFolder + " holds " + name
            + ", a name the checkpoint keeps for the trainer's own state");
      }
    }
    for (String name : objectiveFiles.keySet()) {
      // Export copies everything but LOOP_FILES as the model: an objective file outside it would end up there.
      if (!LOOP_FILES.contains(name) || name.equals(OPTIMIZER) || name.equals(STATE) || name.equals(TRAINER_STATE)) {
        throw new IllegalArgumentException("objective checkpoint file " + name + " is not one of the names "
            + "TrainerCheckpoint.LOOP_FILES reserves for objective state");
      }
    }
    files.put(OPTIMIZER, optimizer::write);
    files.put(STATE, PayloadWriter.json(state));
    files.putAll(objectiveFiles);
    return files;
  }

  /** Whether {@code checkpoint} is of the earlier layout ({@code checkpoints/step-N/}, model in a sub-folder). */
  public static boolean isLegacy(Checkpoint checkpoint) {
    return !checkpoint.files().contains(STATE);
  }

  public static State readState(Checkpoint checkpoint) {
    State state = checkpoint.readJson(isLegacy(checkpoint) ? TRAINER_STATE : STATE, State.class);
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

  /** The model folder inside the checkpoint, for the model's loader: the checkpoint folder itself. */
  public static String modelFolder(Checkpoint checkpoint) {
    return isLegacy(checkpoint) ? checkpoint.path(MODEL) : checkpoint.dir();
  }

  /** The PEFT adapter folder inside a LoRA run's checkpoint: the checkpoint folder itself. */
  public static String adapterFolder(Checkpoint checkpoint) {
    return isLegacy(checkpoint) ? checkpoint.path(ADAPTER) : checkpoint.dir();
  }

  /** Whether the checkpoint holds an adapter (a LoRA run) rather than a whole model. */
  public static boolean holdsAdapter(Checkpoint checkpoint) {
    return isLegacy(checkpoint) ? checkpoint.files().stream().anyMatch(f -> f.startsWith(ADAPTER + "/"))
        : checkpoint.files().contains(CausalLM.ADAPTER_CONFIG);
  }

  /**
   * The model's (or adapter's) files: each checkpoint file name mapped to its name in a model folder, for a verified
   * copy of the model alone (the export).
   */
  public static Map<String, String> modelFiles(Checkpoint checkpoint) {
    Map<String, String> out = new TreeMap<>();
    boolean legacy = isLegacy(checkpoint);
    String prefix = (holdsAdapter(checkpoint) ? ADAPTER : MODEL) + "/";
    for (String name : checkpoint.files()) {
      if (legacy && name.startsWith(prefix)) {
        out.put(name, name.substring(prefix.length()));
      } else if (!legacy && !LOOP_FILES.contains(name)) {
        out.put(name, name);
      }
    }
    return out;
  }
}
