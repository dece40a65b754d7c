package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.EnumSet;

/** The DPO training stage: loss, optimiser, loop, workers and run folder. Keys as in TRL's DPOConfig. */
public record TrainSettings(
    double beta,
    LossType lossType,
    double labelSmoothing,
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
    ReferenceMode referenceMode,
    int checksumSteps,
    FaultInjectionSettings faultInjection,
    double allreduceBucketMb,
    int ringConnectTimeoutS,
    int ringIoTimeoutS,
    int saveTimeoutS,
    MixedPrecision mixedPrecision,
    boolean gradientCheckpointing,
    PeftSettings peft,
    int ringPeerTimeoutS) implements Validated, OptimizationSettings {

  /** DPO loss variants with TRL's names. */
  public enum LossType {
    /** The paper's loss; with label_smoothing > 0 it is conservative DPO (cDPO). */
    @JsonProperty("sigmoid") SIGMOID,
    /** Robust DPO (Chowdhury et al. 2024): unbiased under label noise of rate label_smoothing. */
    @JsonProperty("robust") ROBUST,
    /** Identity preference optimisation (Azar et al. 2023), on per-token mean log-probs as in TRL. */
    @JsonProperty("ipo") IPO,
    /** The SLiC / RSO hinge loss on the normalised likelihood. */
    @JsonProperty("hinge") HINGE,
    /** The sigmoid loss with the reference log-ratio taken as 0 (TRL's reference_free=True). */
    @JsonProperty("reference_free") REFERENCE_FREE
  }

  /** Where reference log-probs come from. */
  public enum ReferenceMode {
    /** Read from the shards (the reference stage computed them once). */
    @JsonProperty("precomputed") PRECOMPUTED,
    /**
     * The initial policy computes them during training, without graph: a frozen copy of it, or with
     * {@code peft} the policy itself with its adapters switched off (base + {@code model.adapter} when set).
     */
    @JsonProperty("in_loop") IN_LOOP
  }

  private static final EnumSet<LossType> SMOOTHABLE = EnumSet.of(LossType.SIGMOID, LossType.ROBUST,
      LossType.REFERENCE_FREE);

  @Override
  public void validate(String prefix, Violations v) {
    v.positive(prefix + ".beta", beta);
    v.require(lossType != null, prefix + ".loss_type", "must be set", null);
    v.inRange(prefix + ".label_smoothing", labelSmoothing, 0.0, 0.5);
    v.require(labelSmoothing == 0 || lossType == null || SMOOTHABLE.contains(lossType),
        prefix + ".label_smoothing",
        "applies to loss_type sigmoid, robust or reference_free only (loss_type is "
            + (lossType == null ? null : ConfigLoader.yamlName(lossType)) + ")", labelSmoothing);
    v.require(referenceMode != null, prefix + ".reference_mode", "must be set", null);
    v.require(mixedPrecision != null, prefix + ".mixed_precision", "must be no, bf16 or fp16", null);
    validateOptimization(prefix, v);
    v.nonNegative(prefix + ".checksum_steps", checksumSteps);
    if (peft != null) {
      peft.validate(prefix + ".peft", v);
    }
    v.require(faultInjection != null, prefix + ".fault_injection", "must be set", null);
    if (faultInjection != null) {
      faultInjection.validate(prefix + ".fault_injection", workers, v);
    }
  }
}
