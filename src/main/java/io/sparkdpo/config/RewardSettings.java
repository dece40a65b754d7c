package io.sparkdpo.config;

/**
 * Reward modelling ({@code spark-dpo reward}): a scalar head on the causal LM trained on preference pairs with the
 * Bradley-Terry loss, names as in TRL's {@code RewardConfig}. {@code center_rewards_coefficient} (null: off) adds
 * TRL's centering term, coefficient x mean((r_chosen + r_rejected)^2), which pulls the rewards towards zero mean.
 * {@code peft} (LoRA) trains adapters on the frozen float32 base and the score head in full beside them, as PEFT's
 * SEQ_CLS task does; {@code modules_to_save} may add {@code embed_tokens} (a reward model has no {@code lm_head}).
 */
public record RewardSettings(
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
    Double centerRewardsCoefficient,
    String metricForBestModel,
    Boolean greaterIsBetter) implements Validated, OptimizationSettings {

  @Override
  public void validate(String prefix, Violations v) {
    validateOptimization(prefix, v);
    v.require(mixedPrecision != null, prefix + ".mixed_precision", "must be no, bf16 or fp16", null);
    if (peft != null) {
      peft.validate(prefix + ".peft", v);
      v.require(!peft.modulesToSave().contains("lm_head"), prefix + ".peft.modules_to_save", "cannot name lm_head: a "
          + "reward model has a score head instead, which LoRA always trains whole", peft.modulesToSave());
    }
    v.require(centerRewardsCoefficient == null || centerRewardsCoefficient >= 0, prefix
        + ".center_rewards_coefficient", "must be null (off) or >= 0", centerRewardsCoefficient);
  }
}
