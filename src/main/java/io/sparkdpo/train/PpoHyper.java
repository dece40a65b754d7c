package io.sparkdpo.train;

/**
 * PPO's knobs with TRL 0.22.2's names and defaults ({@code PPOConfig}): the KL penalty against pi_SFT
 * ({@code kl_coef}, {@code kl_estimator}), the advantage estimate ({@code gamma}, {@code lam},
 * {@code whiten_rewards}), the losses ({@code cliprange}, {@code cliprange_value}, {@code vf_coef}) and the sampling
 * {@code temperature} whose distribution the log-probs are taken under (TRL's default 0.7).
 */
public record PpoHyper(double klCoef, KlEstimator klEstimator, double gamma, double lam, boolean whitenRewards,
    double clipRange, double clipRangeValue, double vfCoef, double temperature) {

  /** Per-token KL estimates of Schulman's "Approximating KL divergence", with {@code r = log ref - log pi}. */
  public enum KlEstimator {
    /** {@code -r = log pi - log ref}: unbiased, can be negative per token. */
    K1,
    /** {@code (e^r - 1) - r}: unbiased, never negative, lower variance. */
    K3;

    public double of(double logp, double refLogp) {
      double r = refLogp - logp;
      return this == K1 ? -r : Math.expm1(r) - r;
    }
  }

  public PpoHyper {
    requireAtLeast("kl_coef", klCoef, 0);
    if (klEstimator == null) {
      throw new IllegalArgumentException("kl_estimator must be k1 or k3");
    }
    requireUnit("gamma", gamma);
    requireUnit("lam", lam);
    requirePositive("cliprange", clipRange);
    requirePositive("cliprange_value", clipRangeValue);
    requireAtLeast("vf_coef", vfCoef, 0);
    requirePositive("temperature", temperature);
  }

  /** TRL 0.22.2's {@code PPOConfig} defaults. */
  public static PpoHyper trlDefaults() {
    return new PpoHyper(0.05, KlEstimator.K1, 1.0, 0.95, false, 0.2, 0.2, 0.1, 0.7);
  }

  public PpoHyper withKlCoef(double value) {
    return new PpoHyper(value, klEstimator, gamma, lam, whitenRewards, clipRange, clipRangeValue, vfCoef,
        temperature);
  }

  public PpoHyper withTemperature(double value) {
    return new PpoHyper(klCoef, klEstimator, gamma, lam, whitenRewards, clipRange, clipRangeValue, vfCoef, value);
  }

  private static void requireAtLeast(String key, double value, double min) {
    if (!(value >= min) || Double.isInfinite(value)) {
      throw new IllegalArgumentException(key + " must be a finite number >= " + min + ", got " + value);
    }
  }

  private static void requirePositive(String key, double value) {
    if (!(value > 0) || Double.isInfinite(value)) {
      throw new IllegalArgumentException(key + " must be a finite number > 0, got " + value);
    }
  }

  private static void requireUnit(String key, double value) {
    if (!(value >= 0 && value <= 1)) {
      throw new IllegalArgumentException(key + " must be in [0, 1], got " + value);
    }
  }
}
