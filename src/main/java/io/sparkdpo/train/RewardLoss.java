package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import io.sparkdpo.model.ScalarOps;

/**
 * The Bradley-Terry loss of reward modelling, as TRL's {@code RewardTrainer.compute_loss} (0.22.2) has it. With the
 * rewards {@code r_w} of the chosen and {@code r_l} of the rejected response, an optional margin {@code m} per pair
 * and {@code c} the {@code center_rewards_coefficient}, each pair's loss is
 * <pre>
 *   -log s(r_w - r_l - m)  +  c (r_w + r_l)^2
 * </pre>
 * and the batch's loss their mean (TRL: the mean of the first term plus c times the mean of the second, the same
 * number). {@code -log s(x)} is computed as {@code softplus(-x)}, finite for any x. The centering term (arXiv
 * 2312.09244, Eq. 2) only pulls the rewards towards zero mean; without it the loss sees reward differences alone.
 *
 * <p>Inputs are [B] float32 rewards carrying the autograd graph from the model's score head; margins are a constant
 * [B] array or null. The result is attached to {@code chosen}'s manager: call it inside the step's sub-manager.
 */
public final class RewardLoss {
  /** Null: no centering term. */
  private final Double centerRewardsCoefficient;

  public RewardLoss(Double centerRewardsCoefficient) {
    if (centerRewardsCoefficient != null
        && !(centerRewardsCoefficient >= 0 && Double.isFinite(centerRewardsCoefficient))) {
      throw new IllegalArgumentException("center_rewards_coefficient must be null or a finite number >= 0, got "
          + centerRewardsCoefficient);
    }
    this.centerRewardsCoefficient = centerRewardsCoefficient;
  }

  /** Each pair's loss [B], with the graph of {@code chosen} and {@code rejected}. */
  public NDArray losses(NDArray chosen, NDArray rejected, NDArray margins) {
    NDArray bt;
    try (NDArray difference = chosen.sub(rejected);
        NDArray shifted = margins == null ? null : difference.sub(margins);
        NDArray minus = (shifted == null ? difference : shifted).neg()) {
      bt = Activation.softPlus(minus);
    }
    if (centerRewardsCoefficient == null) {
      return bt;
    }
    try (NDArray a = bt; NDArray sum = chosen.add(rejected); NDArray squared = sum.square();
        NDArray centering = ScalarOps.mul(squared, centerRewardsCoefficient)) {
      return a.add(centering);
    }
  }

  public Double centerRewardsCoefficient() {
    return centerRewardsCoefficient;
  }
}
