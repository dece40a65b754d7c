package io.sparkdpo.config;

/**
 * Supervised fine-tuning on prompt + chosen response (the paper's pi_SFT), before DPO. Loss on response
 * tokens only unless {@code completion_only_loss} is false (TRL's key and default). Plain text ({@code sft --text})
 * is cut into windows of {@code block_size} tokens. {@code peft} (null: full fine-tuning) trains LoRA adapters on the
 * frozen base instead.
 */
public record SftSettings(
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
    boolean completionOnlyLoss,
    int blockSize,
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
    Boolean greaterIsBetter) implements Validated, OptimizationSettings {

  @Override
  public void validate(String prefix, Violations v) {
    validateOptimization(prefix, v);
    v.require(mixedPrecision != null, prefix + ".mixed_precision", "must be no, bf16 or fp16", null);
    if (peft != null) {
      peft.validate(prefix + ".peft", v);
    }
    v.require(blockSize >= 2, prefix + ".block_size", "must be at least 2 tokens", blockSize);
  }
}
