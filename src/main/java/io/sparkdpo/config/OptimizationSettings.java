package io.sparkdpo.config;

/**
 * The keys the {@code sft} and {@code train} sections share: optimiser, schedule, batch and loop sizes, with
 * the names and meanings of transformers' {@code TrainingArguments} (what TRL users already know).
 */
public interface OptimizationSettings {
  double learningRate();

  LrSchedulerType lrSchedulerType();

  /** Warmup length in optimizer steps; wins over {@link #warmupRatio()} when positive, as in transformers. */
  int warmupSteps();

  /** Warmup as a fraction of all optimizer steps, rounded up. */
  double warmupRatio();

  double weightDecay();

  double adamBeta1();

  double adamBeta2();

  double adamEpsilon();

  /** Clip gradients to this global L2 norm; 0 disables clipping (the norm is still reported). */
  double maxGradNorm();

  int perDeviceTrainBatchSize();

  int perDeviceEvalBatchSize();

  int gradientAccumulationSteps();

  double numTrainEpochs();

  /** Positive: stop after this many optimizer steps, overriding {@link #numTrainEpochs()}; -1: use epochs. */
  long maxSteps();

  int loggingSteps();

  /** Evaluate every this many optimizer steps; 0: only at the end. */
  int evalSteps();

  /** Checkpoint every this many optimizer steps; 0: only at the end. */
  int saveSteps();

  /** Keep at most this many checkpoints (TRL's {@code save_total_limit}); null keeps all. */
  Integer saveTotalLimit();

  long seed();

  /** Training replicas, one per Spark executor (one barrier task each). */
  int workers();

  /** How many times the driver submits the training stage before giving up (resuming from checkpoints). */
  int maxAttempts();

  String outputDir();

  /** Capacity of one gradient all-reduce bucket in MiB (PyTorch DDP's {@code bucket_cap_mb}). */
  double allreduceBucketMb();

  /** Longest a worker joining the ring waits for its neighbours, in seconds. */
  int ringConnectTimeoutS();

  /**
   * Longest one connection to a worker's ring listener may take to authenticate, in seconds, before it is dropped
   * (others are served meanwhile).
   */
  int ringHandshakeTimeoutS();

  /** Longest a collective waits with no byte (or keepalive) moving before it fails, in seconds. */
  int ringIoTimeoutS();

  /** Longest the other workers wait for rank 0 to verify or write a checkpoint, in seconds. */
  int saveTimeoutS();

  /**
   * Longest a worker inside a collective waits while a ring neighbour sends nothing at all (no data, no keepalive)
   * before naming it hung, in seconds; capped at {@link #ringIoTimeoutS()}.
   */
  int ringPeerTimeoutS();

  /** Matmuls in bfloat16 or float16 around float32 master weights, or not ({@link MixedPrecision}). */
  MixedPrecision mixedPrecision();

  /**
   * Recompute each decoder layer in backward instead of keeping its activations (transformers'
   * {@code gradient_checkpointing}): less memory for about one more forward pass of the decoder stack.
   */
  boolean gradientCheckpointing();

  /** LoRA on the frozen base ({@code peft:} with {@code type: lora}); null: full fine-tuning. */
  PeftSettings peft();

  /**
   * When committed checkpoints exist but none verifies: false (default) stops the run with an error naming them;
   * true discards them and trains from step 0, a deliberate restart.
   */
  boolean restartOnCorruptCheckpoints();

  /**
   * The run folder's lease ({@code _lease.json}): a lease whose heartbeat is older than this many seconds is stale
   * (its writer is gone) and taken over; a younger one refuses a second writer.
   */
  int leaseTimeoutS();

  /**
   * The evaluation metric that picks the best checkpoint ({@code best_metric}, {@code best_model_checkpoint} in
   * trainer_state.json; kept by {@code save_total_limit}), transformers' key: {@code loss} and {@code eval_loss} name
   * the same; null tracks none.
   */
  String metricForBestModel();

  /** Whether a greater {@link #metricForBestModel()} is better; null: false for a name ending in loss, else true. */
  Boolean greaterIsBetter();

  /** {@link #allreduceBucketMb()} in bytes. */
  default long allreduceBucketBytes() {
    return (long) (allreduceBucketMb() * (1 << 20));
  }

  /** Range checks of the shared keys; each problem names {@code prefix.key}. */
  default void validateOptimization(String prefix, Violations v) {
    v.positive(prefix + ".learning_rate", learningRate());
    v.require(lrSchedulerType() != null, prefix + ".lr_scheduler_type", "must be set", null);
    v.nonNegative(prefix + ".warmup_steps", warmupSteps());
    v.inRange(prefix + ".warmup_ratio", warmupRatio(), 0.0, 1.0);
    v.require(!(warmupSteps() > 0 && warmupRatio() > 0), prefix + ".warmup_ratio",
        "set warmup_steps or warmup_ratio, not both (warmup_steps=" + warmupSteps() + ")", warmupRatio());
    v.nonNegative(prefix + ".weight_decay", weightDecay());
    v.inRange(prefix + ".adam_beta1", adamBeta1(), 0.0, 1.0);
    v.inRange(prefix + ".adam_beta2", adamBeta2(), 0.0, 1.0);
    v.positive(prefix + ".adam_epsilon", adamEpsilon());
    v.nonNegative(prefix + ".max_grad_norm", maxGradNorm());
    v.positive(prefix + ".per_device_train_batch_size", perDeviceTrainBatchSize());
    v.positive(prefix + ".per_device_eval_batch_size", perDeviceEvalBatchSize());
    v.positive(prefix + ".gradient_accumulation_steps", gradientAccumulationSteps());
    v.positive(prefix + ".num_train_epochs", numTrainEpochs());
    v.require(maxSteps() == -1 || maxSteps() > 0, prefix + ".max_steps", "must be -1 (use epochs) or > 0",
        maxSteps());
    v.positive(prefix + ".logging_steps", loggingSteps());
    v.nonNegative(prefix + ".eval_steps", evalSteps());
    v.nonNegative(prefix + ".save_steps", saveSteps());
    v.require(saveTotalLimit() == null || saveTotalLimit() >= 1, prefix + ".save_total_limit",
        "must be null (keep all) or >= 1", saveTotalLimit());
    // Checkpointed layers run their forward without graph (no dropout) and draw fresh masks when recomputed in
    // backward, so LoRA dropout would differentiate another function than the one whose loss was computed.
    v.require(!gradientCheckpointing() || peft() == null || peft().dropout() == 0, prefix + ".gradient_checkpointing",
        "cannot be combined with LoRA dropout (" + prefix + ".peft.dropout > 0): the recomputed layers would draw "
            + "other dropout masks; set peft.dropout: 0 or gradient_checkpointing: false", gradientCheckpointing());
    v.positive(prefix + ".workers", workers());
    v.positive(prefix + ".max_attempts", maxAttempts());
    v.notBlank(prefix + ".output_dir", outputDir());
    double bucketBytes = allreduceBucketMb() * (1 << 20);
    v.require(bucketBytes >= Float.BYTES && bucketBytes <= Integer.MAX_VALUE, prefix + ".allreduce_bucket_mb",
        "must hold at least one float and less than 2048 MiB", allreduceBucketMb());
    v.positive(prefix + ".ring_connect_timeout_s", ringConnectTimeoutS());
    v.positive(prefix + ".ring_io_timeout_s", ringIoTimeoutS());
    v.positive(prefix + ".ring_handshake_timeout_s", ringHandshakeTimeoutS());
    v.require(saveTimeoutS() >= ringIoTimeoutS(), prefix + ".save_timeout_s",
        "must be at least ring_io_timeout_s (" + ringIoTimeoutS() + ")", saveTimeoutS());
    v.require(leaseTimeoutS() >= 10, prefix + ".lease_timeout_s",
        "must be at least 10 s (the heartbeat comes every quarter of it)", leaseTimeoutS());
    v.positive(prefix + ".ring_peer_timeout_s", ringPeerTimeoutS());
    v.require(metricForBestModel() == null || !metricForBestModel().isBlank(), prefix + ".metric_for_best_model",
        "must be a metric name (e.g. loss, rewards/accuracies) or null", metricForBestModel());
  }
}
