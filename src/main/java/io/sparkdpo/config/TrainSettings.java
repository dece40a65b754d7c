package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.EnumSet;
import java.util.List;

/** The DPO training stage: loss, optimiser, loop, workers and run folder. Keys as in TRL's DPOConfig. */
public record TrainSettings(
    double beta,
    @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<LossType> lossType,
    double labelSmoothing,
    List<Double> lossWeights,
    Double rpoAlpha,
    double discopopTau,
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
    int ringHandshakeTimeoutS,
    boolean restartOnCorruptCheckpoints,
    int leaseTimeoutS,
    int ringPeerTimeoutS,
    String metricForBestModel,
    Boolean greaterIsBetter) implements Validated, OptimizationSettings {

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
    @JsonProperty("reference_free") REFERENCE_FREE,
    /** Pairwise EXO (Ji et al. 2024), reverse KL between the policy's and the labels' preference. */
    @JsonProperty("exo_pair") EXO_PAIR,
    /** Pairwise noise-contrastive alignment (Chen et al. 2024). */
    @JsonProperty("nca_pair") NCA_PAIR,
    /** Pairwise binary classifier optimisation (Jung et al. 2024), against a running mean reward. */
    @JsonProperty("bco_pair") BCO_PAIR,
    /** SPPO with hard labels (Wu et al. 2024): squared distances of the log-ratios from +-1/(2 beta). */
    @JsonProperty("sppo_hard") SPPO_HARD,
    /** Alignment via optimal transport (Melnyk et al. 2024), on the batch's sorted log-ratio differences. */
    @JsonProperty("aot") AOT,
    /** AOT on the batch's sorted chosen and rejected log-ratios, each sorted on its own. */
    @JsonProperty("aot_pair") AOT_PAIR,
    /** Anchored preference optimisation (D'Oosterlinck et al. 2024): raise chosen, lower rejected. */
    @JsonProperty("apo_zero") APO_ZERO,
    /** APO for chosen responses worse than the model's own: lower both, rejected more. */
    @JsonProperty("apo_down") APO_DOWN,
    /** DiscoPOP (Chris Lu et al. 2024): logistic and exponential losses blended by s(beta h / discopop_tau). */
    @JsonProperty("discopop") DISCOPOP
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

  /** The types that read label_smoothing (TRL ignores it, with a warning, for the others). */
  private static final EnumSet<LossType> SMOOTHABLE = EnumSet.of(LossType.SIGMOID, LossType.ROBUST,
      LossType.REFERENCE_FREE, LossType.EXO_PAIR, LossType.AOT, LossType.AOT_PAIR);

  @Override
  public void validate(String prefix, Violations v) {
    v.positive(prefix + ".beta", beta);
    boolean typed = lossType != null && !lossType.isEmpty() && lossType.stream().allMatch(t -> t != null);
    v.require(typed, prefix + ".loss_type", "must name one loss type or a list of them", lossType);
    v.inRange(prefix + ".label_smoothing", labelSmoothing, 0.0, 0.5);
    String types = typed ? String.join(", ", lossType.stream().map(ConfigLoader::yamlName).toList()) : null;
    v.require(labelSmoothing == 0 || !typed || lossType.stream().anyMatch(SMOOTHABLE::contains),
        prefix + ".label_smoothing", "applies to loss_type sigmoid, robust, reference_free, exo_pair, aot or "
            + "aot_pair only (loss_type is " + types + ")", labelSmoothing);
    v.require(lossWeights == null || !typed || lossWeights.size() == lossType.size(), prefix + ".loss_weights",
        "needs one weight per loss_type entry (" + types + ")", lossWeights);
    v.require(lossWeights == null || lossWeights.stream().allMatch(w -> w != null && Double.isFinite(w)),
        prefix + ".loss_weights", "must be finite numbers", lossWeights);
    v.require(rpoAlpha == null || (Double.isFinite(rpoAlpha) && rpoAlpha >= 0), prefix + ".rpo_alpha",
        "must be null (no NLL term) or a finite number >= 0", rpoAlpha);
    v.positive(prefix + ".discopop_tau", discopopTau);
    // bco_pair's running mean would have to be all-reduced in every micro-batch's forward to stay the same on all
    // replicas; that collective is not built, so it trains on one worker.
    v.require(!typed || !lossType.contains(LossType.BCO_PAIR) || workers == 1, prefix + ".workers",
        "loss_type bco_pair runs on one worker only (its running reward mean is not shared between workers)",
        workers);
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
