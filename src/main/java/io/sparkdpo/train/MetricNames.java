package io.sparkdpo.train;

/** Metric keys as TRL logs them, so dashboards and habits carry over; evaluation adds {@link #EVAL}. */
public final class MetricNames {
  public static final String LOSS = "loss";
  public static final String REWARDS_CHOSEN = "rewards/chosen";
  public static final String REWARDS_REJECTED = "rewards/rejected";
  public static final String REWARDS_MARGINS = "rewards/margins";
  public static final String REWARDS_ACCURACIES = "rewards/accuracies";
  public static final String LOGPS_CHOSEN = "logps/chosen";
  public static final String LOGPS_REJECTED = "logps/rejected";
  /**
   * The policy's logits averaged over the vocabulary and the micro-batch's chosen (rejected) response positions, as
   * TRL's {@code mean_chosen_logits}; micro-batches and ranks combine as TRL's means of means (weighted by pairs).
   */
  public static final String LOGITS_CHOSEN = "logits/chosen";
  public static final String LOGITS_REJECTED = "logits/rejected";
  /** The chosen responses' NLL per token, logged with {@code rpo_alpha}. */
  public static final String NLL_LOSS = "nll_loss";
  public static final String GRAD_NORM = "grad_norm";
  public static final String LEARNING_RATE = "learning_rate";
  public static final String TOKENS_PER_SECOND = "tokens_per_second";
  public static final String EPOCH = "epoch";
  /**
   * Tokens the policy ran through in training (prompt and response, no padding; DPO counts the prompt twice, once
   * with each response), over every rank: a step reports its own, the log the running total since step 1 (TRL
   * SFTTrainer's {@code num_tokens}; {@link MetricsWindow}).
   */
  public static final String NUM_TOKENS = "num_tokens";
  public static final String STEP = "step";
  /** Prefix of evaluation metrics ({@code eval/loss}, ...). */
  public static final String EVAL = "eval/";

  private MetricNames() {}
}
