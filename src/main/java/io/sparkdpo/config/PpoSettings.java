package io.sparkdpo.config;

import java.util.List;

/**
 * PPO against pi_SFT ({@code spark-dpo ppo}), names and defaults as in TRL 0.22.2's {@code PPOConfig}. The optimiser,
 * loop, ring and lease keys mean what they mean under {@code sft:}; the batch keys follow TRL's arithmetic: a rollout
 * batch holds {@code per_device_train_batch_size x gradient_accumulation_steps x num_mini_batches x workers}
 * prompts, one mini-batch (one optimizer step) {@code per_device_train_batch_size x gradient_accumulation_steps x
 * workers} of them, and the run takes {@code ceil(total_episodes / batch)} rollout batches ("updates"; a logged step
 * is one update), or {@code max_steps} when that is > 0. {@code total_episodes} null: {@code num_train_epochs} x the
 * number of prompts.
 *
 * <p>The reward: {@code reward_model} (a folder {@code spark-dpo reward} exported, scored on the policy's token ids,
 * so it must use the policy's tokenizer), or when null the ground-truth {@code reward} (null: {@code evaluate.reward})
 * on the decoded text as an oracle, labelled so in run.json. {@code eval_steps}, {@code mixed_precision},
 * {@code gradient_checkpointing} and {@code peft} are not available for PPO and must keep their defaults.
 */
public record PpoSettings(
    double learningRate,
    LrSchedulerType lrSchedulerType,
    int warmupSteps,
    double warmupRatio,
    double weightDecay,
    double adamBeta1,
    double adamBeta2,
    double adamEpsilon,
    double maxGradNorm,
    int perDeviceTrainBatchSize,
    int perDeviceEvalBatchSize,
    int gradientAccumulationSteps,
    double numTrainEpochs,
    long maxSteps,
    int loggingSteps,
    int evalSteps,
    int saveSteps,
    Integer saveTotalLimit,
    long seed,
    int workers,
    int maxAttempts,
    String outputDir,
    double allreduceBucketMb,
    int ringConnectTimeoutS,
    int ringIoTimeoutS,
    int saveTimeoutS,
    MixedPrecision mixedPrecision,
    boolean gradientCheckpointing,
    PeftSettings peft,
    int ringHandshakeTimeoutS,
    boolean restartOnCorruptCheckpoints,
    int leaseTimeoutS,
    int ringPeerTimeoutS,
    String metricForBestModel,
    Boolean greaterIsBetter,
    List<String> prompts,
    String rewardModel,
    String reward,
    Long totalEpisodes,
    int numPpoEpochs,
    int numMiniBatches,
    int localRolloutForwardBatchSize,
    int responseLength,
    double temperature,
    double klCoef,
    String klEstimator,
    double gamma,
    double lam,
    boolean whitenRewards,
    double cliprange,
    double cliprangeValue,
    double vfCoef) implements Validated, OptimizationSettings {

  public PpoSettings {
    prompts = prompts == null ? List.of() : List.copyOf(prompts);
  }

  /** Prompts per rollout batch over all {@code workers}: TRL's {@code batch_size}. */
  public long rolloutBatch() {
    return (long) perDeviceTrainBatchSize * gradientAccumulationSteps * numMiniBatches * workers;
  }

  /** The ground-truth reward's name for the oracle: {@code reward}, else {@code evaluate.reward}. */
  public String rewardOr(EvaluateSettings evaluate) {
    return reward != null ? reward : evaluate.reward();
  }

  @Override
  public void validate(String prefix, Violations v) {
    validateOptimization(prefix, v);
    v.require(evalSteps == 0, prefix + ".eval_steps", "must be 0: PPO has no evaluation split (evaluate the "
        + "exported policy with spark-dpo evaluate)", evalSteps);
    v.require(mixedPrecision == MixedPrecision.NO, prefix + ".mixed_precision", "must be no: mixed precision is "
        + "not wired into PPO's rollout and value head", mixedPrecision == null ? null : mixedPrecision.yamlName());
    v.require(!gradientCheckpointing, prefix + ".gradient_checkpointing", "must be false for PPO", true);
    v.require(peft == null, prefix + ".peft", "LoRA is not available for PPO; set peft.type: none", "lora");
    v.require(metricForBestModel == null, prefix + ".metric_for_best_model", "must be null: PPO has no evaluation",
        metricForBestModel);
    for (int i = 0; i < prompts.size(); i++) {
      v.notBlank(prefix + ".prompts[" + i + "]", prompts.get(i));
    }
    v.require(rewardModel == null || !rewardModel.isBlank(), prefix + ".reward_model",
        "must be null (the oracle reward) or a reward model folder", rewardModel);
    v.require(reward == null || !reward.isBlank(), prefix + ".reward", "must be null (evaluate.reward) or a reward "
        + "name", reward);
    v.require(totalEpisodes == null || totalEpisodes > 0, prefix + ".total_episodes",
        "must be null (num_train_epochs x prompts) or > 0", totalEpisodes);
    v.positive(prefix + ".num_ppo_epochs", numPpoEpochs);
    v.positive(prefix + ".num_mini_batches", numMiniBatches);
    v.positive(prefix + ".local_rollout_forward_batch_size", localRolloutForwardBatchSize);
    v.positive(prefix + ".response_length", responseLength);
    v.require(temperature > 0 && Double.isFinite(temperature), prefix + ".temperature", "must be a finite number "
        + "> 0 (the log-probs are taken at it)", temperature);
    v.require(klCoef >= 0 && Double.isFinite(klCoef), prefix + ".kl_coef", "must be a finite number >= 0", klCoef);
    v.oneOf(prefix + ".kl_estimator", klEstimator, "k1", "k3");
    v.inClosedRange(prefix + ".gamma", gamma, 0.0, 1.0);
    v.inClosedRange(prefix + ".lam", lam, 0.0, 1.0);
    v.require(cliprange > 0 && Double.isFinite(cliprange), prefix + ".cliprange", "must be a finite number > 0",
        cliprange);
    v.require(cliprangeValue > 0 && Double.isFinite(cliprangeValue), prefix + ".cliprange_value",
        "must be a finite number > 0", cliprangeValue);
    v.require(vfCoef >= 0 && Double.isFinite(vfCoef), prefix + ".vf_coef", "must be a finite number >= 0", vfCoef);
  }
}
