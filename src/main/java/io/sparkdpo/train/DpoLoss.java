package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.TrainSettings;
import io.sparkdpo.config.TrainSettings.LossType;
import io.sparkdpo.model.ScalarOps;

/**
 * The DPO loss family with TRL's names and formulas ({@code DPOTrainer.dpo_loss}). With
 * {@code h = (log pi(y_w) - log pi(y_l)) - (log ref(y_w) - log ref(y_l))} and label smoothing {@code e}:
 * <ul>
 *   <li>sigmoid: {@code -(1-e) log s(beta h) - e log s(-beta h)} (the paper's loss; cDPO when e > 0)</li>
 *   <li>robust: {@code (-(1-e) log s(beta h) + e log s(-beta h)) / (1 - 2e)}</li>
 *   <li>ipo: {@code (h - 1/(2 beta))^2}, on per-token mean log-probs (TRL averages over the response)</li>
 *   <li>hinge: {@code relu(1 - beta h)}</li>
 *   <li>reference_free: sigmoid with the reference log-ratio taken as 0</li>
 * </ul>
 * The loss is the mean over pairs; rewards {@code beta (log pi - log ref)} per sequence are detached, as in TRL.
 * Inputs are [B] arrays; the policy ones carry the autograd graph from the model, so
 * {@code d loss / d theta} flows through them unchanged. Constants enter through {@link ScalarOps}, which autograd
 * can read again in backward. Every result is attached to the manager of
 * {@code policyChosen}: call it inside the step's sub-manager.
 */
public final class DpoLoss {
  private final LossType type;
  private final double beta;
  private final double labelSmoothing;

  public DpoLoss(LossType type, double beta, double labelSmoothing) {
    if (!(beta > 0) || !Double.isFinite(beta)) {
      throw new IllegalArgumentException("beta must be a finite number > 0, got " + beta);
    }
    if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
      throw new IllegalArgumentException("label_smoothing must be in [0, 0.5), got " + labelSmoothing);
    }
    this.type = type;
    this.beta = beta;
    this.labelSmoothing = labelSmoothing;
  }

  public static DpoLoss of(TrainSettings settings) {
    return new DpoLoss(settings.lossType(), settings.beta(), settings.labelSmoothing());
  }

  public LossType type() {
    return type;
  }

  public double beta() {
    return beta;
  }

  public double labelSmoothing() {
    return labelSmoothing;
  }

  /** True for ipo: feed per-token mean log-probs (summed log-prob / response tokens), as TRL does. */
  public boolean usesMeanLogProbs() {
    return type == LossType.IPO;
  }

  /** True when the loss needs reference log-probs (everything but reference_free). */
  public boolean needsReference() {
    return type != LossType.REFERENCE_FREE;
  }

  /**
   * @param policyChosen [B] log pi(y_w|x), with gradient
   * @param policyRejected [B] log pi(y_l|x), with gradient
   * @param refChosen [B] log ref(y_w|x); may be null only for reference_free (rewards then use 0)
   * @param refRejected [B] log ref(y_l|x); likewise
   */
  public DpoOutput compute(NDArray policyChosen, NDArray policyRejected, NDArray refChosen, NDArray refRejected) {
    if (needsReference() && (refChosen == null || refRejected == null)) {
      throw new IllegalArgumentException("loss_type " + ConfigLoader.yamlName(type) + " needs reference log-probs");
    }
    NDArray logits = policyChosen.sub(policyRejected);
    if (type != LossType.REFERENCE_FREE) {
      try (NDArray piLogRatios = logits; NDArray refLogRatios = refChosen.sub(refRejected)) {
        logits = piLogRatios.sub(refLogRatios);
      }
    }
    NDArray losses;
    try (NDArray h = logits) {
      losses = switch (type) {
        case SIGMOID, REFERENCE_FREE -> smoothedSigmoid(h, -1.0);
        case ROBUST -> ScalarOps.divi(smoothedSigmoid(h, +1.0), 1 - 2 * labelSmoothing);
        case HINGE -> {
          try (NDArray z = ScalarOps.mul(h, -beta).addi(1.0)) {
            yield Activation.relu(z);
          }
        }
        case IPO -> {
          try (NDArray shifted = h.sub(1 / (2 * beta))) {
            yield shifted.square();
          }
        }
      };
    }
    NDArray loss = losses.mean();
    return new DpoOutput(loss, losses, reward(policyChosen, refChosen), reward(policyRejected, refRejected),
        policyChosen, policyRejected);
  }

  /**
   * {@code -(1-e) log s(z) + sign * e * log s(-z)} with {@code z = beta h}, written with softplus
   * ({@code -log s(z) = softplus(-z)}) so that it stays finite for large |z|.
   */
  private NDArray smoothedSigmoid(NDArray logits, double sign) {
    try (NDArray z = ScalarOps.mul(logits, beta); NDArray minusZ = z.neg()) {
      NDArray main = Activation.softPlus(minusZ);
      if (labelSmoothing == 0) {
        return main;
      }
      ScalarOps.muli(main, 1 - labelSmoothing);
      // e * log s(-z) = -e * softplus(z): sigmoid (sign -1) adds e * softplus(z), robust (sign +1) subtracts it.
      try (NDArray flipped = Activation.softPlus(z)) {
        return main.addi(ScalarOps.muli(flipped, -sign * labelSmoothing));
      }
    }
  }

  private NDArray reward(NDArray policy, NDArray reference) {
    try (NDArray detached = policy.stopGradient()) {
      if (reference == null) {
        return detached.mul(beta);
      }
      return detached.sub(reference).muli(beta);
    }
  }
}
