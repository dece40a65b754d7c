package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;
import java.util.Map;

/**
 * A checkpoint's {@code trainer_state.json} as transformers writes and reads it: the fields of the {@code TrainerState}
 * dataclass of transformers 4.56 ({@code trainer_callback.py}; TRL 0.22.2 needs transformers 4.56 or later), every one
 * written, as {@code save_to_json} does ({@code dataclasses.asdict}, keys sorted). {@code load_from_json} builds the
 * dataclass from the file's keys ({@code cls(**json)}), so a key more or a misspelt one breaks HF tooling:
 * tools/hf/check_trainer_state.py checks a file the same way.
 *
 * <p>What this trainer puts in them: {@code log_history} holds the records of {@code metrics.jsonl} up to this step
 * (train records with their keys, evaluations with {@code eval/x} renamed {@code eval_x}, each with {@code epoch} and
 * {@code step}); {@code best_*} follow {@code metric_for_best_model}; {@code num_input_tokens_seen} and
 * {@code total_flos} are not counted (0, transformers' defaults when the Trainer does not count them either); the
 * state is written by rank 0, which is the world's (and its machine's) process zero.
 */
public record HfTrainerState(
    @JsonProperty("best_global_step") Long bestGlobalStep,
    @JsonProperty("best_metric") Double bestMetric,
    @JsonProperty("best_model_checkpoint") String bestModelCheckpoint,
    @JsonProperty("epoch") Double epoch,
    @JsonProperty("eval_steps") int evalSteps,
    @JsonProperty("global_step") long globalStep,
    @JsonProperty("is_hyper_param_search") boolean isHyperParamSearch,
    @JsonProperty("is_local_process_zero") boolean isLocalProcessZero,
    @JsonProperty("is_world_process_zero") boolean isWorldProcessZero,
    @JsonProperty("log_history") List<Map<String, Object>> logHistory,
    @JsonProperty("logging_steps") int loggingSteps,
    @JsonProperty("max_steps") long maxSteps,
    @JsonProperty("num_input_tokens_seen") long numInputTokensSeen,
    @JsonProperty("num_train_epochs") int numTrainEpochs,
    @JsonProperty("save_steps") int saveSteps,
    @JsonProperty("stateful_callbacks") Map<String, Object> statefulCallbacks,
    @JsonProperty("total_flos") double totalFlos,
    @JsonProperty("train_batch_size") Integer trainBatchSize,
    @JsonProperty("trial_name") String trialName,
    @JsonProperty("trial_params") Map<String, Object> trialParams) {

  /**
   * {@code stateful_callbacks} as the Trainer saves it: the {@code TrainerControl} flags at a save ({@code should_save}
   * set, {@code should_training_stop} after the last step).
   */
  static Map<String, Object> controlAtSave(boolean lastStep) {
    return Map.of("TrainerControl", Map.of(
        "args", Map.of("should_epoch_stop", false, "should_evaluate", false, "should_log", false, "should_save", true,
            "should_training_stop", lastStep),
        "attributes", Map.of()));
  }
}
