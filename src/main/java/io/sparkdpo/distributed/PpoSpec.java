package io.sparkdpo.distributed;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.config.ModelSettings;
import io.sparkdpo.config.PpoSettings;
import io.sparkdpo.io.Json;
import io.sparkdpo.train.AdamW;
import io.sparkdpo.train.PpoHyper;
import io.sparkdpo.train.PpoTrainer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * What every replica of a PPO run builds itself from, as the driver planned it: the starting policy (also pi_SFT,
 * the frozen reference), the {@code ppo:} section, the reward and the run's length. Sent to the ranks as JSON and
 * recorded in run.json (so a resume with other settings is refused); nothing in it is secret.
 *
 * @param rewardKind {@code reward_model} or {@code oracle} (the ground truth scores the decoded text)
 * @param reward the reward model folder, or the oracle's reward spec (e.g. {@code afinn})
 * @param rewardName a label for logs and reports: the folder, or {@code oracle:<reward's name>}
 * @param totalUpdates rollout batches of the run
 * @param rolloutBatch prompts per rollout batch over all workers
 * @param prompts prompts in the files, for the episode arithmetic
 * @param promptFiles {@code ppo.prompts} qualified on the driver ({@code file:}, {@code hdfs:}, {@code s3a:}), so
 *     every executor reads the same files
 */
public record PpoSpec(
    @JsonProperty("model") ModelSettings model,
    @JsonProperty("ppo") PpoSettings ppo,
    @JsonProperty("reward_kind") String rewardKind,
    @JsonProperty("reward") String reward,
    @JsonProperty("reward_name") String rewardName,
    @JsonProperty("total_updates") long totalUpdates,
    @JsonProperty("rollout_batch") int rolloutBatch,
    @JsonProperty("prompts") int prompts,
    @JsonProperty("prompt_files") List<String> promptFiles) {
  public static final String REWARD_MODEL = "reward_model";
  public static final String ORACLE = "oracle";

  public PpoSpec {
    if (!REWARD_MODEL.equals(rewardKind) && !ORACLE.equals(rewardKind)) {
      throw new IllegalArgumentException("reward kind must be " + REWARD_MODEL + " or " + ORACLE + ", got "
          + rewardKind);
    }
    promptFiles = List.copyOf(promptFiles);
    if (totalUpdates < 1 || rolloutBatch < 1 || prompts < 1) {
      throw new IllegalArgumentException("a PPO run needs at least one update, one row and one prompt, got "
          + totalUpdates + ", " + rolloutBatch + ", " + prompts);
    }
  }

  /** The trainer's settings: {@code ppo:} under PpoHyper's and PpoTrainer's names. */
  @JsonIgnore
  public PpoTrainer.Settings trainerSettings() {
    PpoSettings p = ppo;
    PpoHyper hyper = new PpoHyper(p.klCoef(), PpoHyper.KlEstimator.valueOf(p.klEstimator().toUpperCase()), p.gamma(),
        p.lam(), p.whitenRewards(), p.cliprange(), p.cliprangeValue(), p.vfCoef(), p.temperature());
    return new PpoTrainer.Settings(hyper, p.numPpoEpochs(), p.numMiniBatches(), p.perDeviceTrainBatchSize(),
        p.responseLength(), p.learningRate(), p.lrSchedulerType(), AdamW.Hyper.of(p), p.maxGradNorm(), p.seed(),
        p.localRolloutForwardBatchSize());
  }

  public String toJson() {
    try {
      return Json.MAPPER.writeValueAsString(this);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A spec the driver wrote; one that does not parse is a bad setting (not retried). */
  public static PpoSpec fromJson(String json) {
    try {
      return Json.MAPPER.readValue(json.getBytes(StandardCharsets.UTF_8), PpoSpec.class);
    } catch (IOException e) {
      throw new IllegalArgumentException("not a PPO spec: " + e.getMessage(), e);
    }
  }
}
