package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.config.ModelSettings;
import io.sparkdpo.config.OptimizationSettings;
import io.sparkdpo.config.RewardSettings;
import io.sparkdpo.config.SftSettings;
import io.sparkdpo.config.TrainSettings;
import io.sparkdpo.io.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * What every replica of a training run builds itself from: the stage, the starting model, the stage's settings and
 * the driver's plan (steps, examples). The driver sends it to the ranks as JSON; nothing in it is secret.
 *
 * @param stage SFT or DPO
 * @param model the starting policy ({@code model:} section); with DPO also the reference (pi_SFT)
 * @param sft the {@code sft:} section (SFT only)
 * @param dpo the {@code train:} section (DPO only)
 * @param referenceModel DPO's frozen reference (pi_SFT, by default the starting policy), for the in-loop reference
 * @param data what the shards hold
 * @param totalSteps optimizer steps of the whole run
 * @param trainExamples training examples over all ranks (pairs or text windows), for the {@code epoch} metric
 * @param reward the {@code reward:} section (reward models only)
 */
public record SessionSpec(
    @JsonProperty("stage") Stage stage,
    @JsonProperty("model") ModelSettings model,
    @JsonProperty("sft") SftSettings sft,
    @JsonProperty("dpo") TrainSettings dpo,
    @JsonProperty("reference_model") String referenceModel,
    @JsonProperty("reference_dtype") String referenceDtype,
    @JsonProperty("data") DataKind data,
    @JsonProperty("total_steps") long totalSteps,
    @JsonProperty("train_examples") long trainExamples,
    @JsonProperty("reward") RewardSettings reward) {

  /** The two training stages. */
  public enum Stage {
    @JsonProperty("sft") SFT,
    @JsonProperty("dpo") DPO,
    /** A Bradley-Terry reward model on preference pairs ({@code spark-dpo reward}). */
    @JsonProperty("reward") REWARD
  }

  /** What the training shards hold. */
  public enum DataKind {
    /** Prepared (or referenced) preference pairs, Parquet. */
    @JsonProperty("pairs") PAIRS,
    /** Token windows of plain text ({@link TextWindows}); SFT only. */
    @JsonProperty("text") TEXT
  }

  public SessionSpec {
    if (stage == null || model == null || data == null) {
      throw new IllegalArgumentException("stage, model and data must be set");
    }
    if ((stage == Stage.SFT) != (sft != null) || (stage == Stage.DPO) != (dpo != null)
        || (stage == Stage.REWARD) != (reward != null)) {
      throw new IllegalArgumentException("an " + stage + " session needs exactly the " + stage + " settings");
    }
    if (stage == Stage.DPO && (data != DataKind.PAIRS || referenceModel == null)) {
      throw new IllegalArgumentException("DPO trains on preference pairs against a reference model");
    }
    if (stage == Stage.REWARD && data != DataKind.PAIRS) {
      throw new IllegalArgumentException("a reward model trains on preference pairs");
    }
    if (totalSteps < 1 || trainExamples < 1) {
      throw new IllegalArgumentException("need at least one step and one example, got " + totalSteps + " and "
          + trainExamples);
    }
  }

  public static SessionSpec sft(ModelSettings model, SftSettings sft, DataKind data, long totalSteps,
      long trainExamples) {
    return new SessionSpec(Stage.SFT, model, sft, null, null, null, data, totalSteps, trainExamples, null);
  }

  /** A DPO session whose in-loop reference (if any) is held and computed in float32, as the policy trains. */
  public static SessionSpec dpo(ModelSettings model, TrainSettings dpo, String referenceModel, long totalSteps,
      long trainExamples) {
    return dpo(model, dpo, referenceModel, "float32", totalSteps, trainExamples);
  }

  /** A DPO session; {@code referenceDtype} is {@code reference.dtype} resolved (float32, bfloat16, float16). */
  public static SessionSpec dpo(ModelSettings model, TrainSettings dpo, String referenceModel, String referenceDtype,
      long totalSteps, long trainExamples) {
    return new SessionSpec(Stage.DPO, model, null, dpo, referenceModel, referenceDtype, DataKind.PAIRS, totalSteps,
        trainExamples, null);
  }

  /** A reward-model session on preference pairs, starting from {@code model.path} (a causal LM or a reward model). */
  public static SessionSpec reward(ModelSettings model, RewardSettings reward, long totalSteps, long trainExamples) {
    return new SessionSpec(Stage.REWARD, model, null, null, null, null, DataKind.PAIRS, totalSteps, trainExamples,
        reward);
  }

  /** The optimiser, batch and loop settings of the stage. */
  @JsonIgnore
  public OptimizationSettings optimization() {
    return switch (stage) {
      case SFT -> sft;
      case DPO -> dpo;
      case REWARD -> reward;
    };
  }

  /** Examples one replica takes per optimizer step, over its micro-batches. */
  @JsonIgnore
  public int examplesPerReplicaStep() {
    return optimization().perDeviceTrainBatchSize() * optimization().gradientAccumulationSteps();
  }

  public String toJson() {
    try {
      return Json.MAPPER.writeValueAsString(this);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * The spec a driver wrote with {@link #toJson}. One that does not parse is a bad setting, not a passing fault (a
   * resubmitted task would fail the same way), hence an {@link IllegalArgumentException}, which workers do not retry.
   */
  public static SessionSpec fromJson(String json) {
    try {
      return Json.MAPPER.readValue(json.getBytes(StandardCharsets.UTF_8), SessionSpec.class);
    } catch (IOException e) {
      throw new IllegalArgumentException("not a session spec: " + e.getMessage(), e);
    }
  }
}
