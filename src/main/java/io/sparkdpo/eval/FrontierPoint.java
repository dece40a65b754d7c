package io.sparkdpo.eval;

import java.util.Locale;

/**
 * One point of the RLHF-vs-DPO reward-versus-KL frontier: a policy (pi_SFT, a DPO or PPO checkpoint, best-of-n at
 * one n) with its mean ground-truth reward on the held-out prompts and its KL from pi_SFT per continuation.
 *
 * @param method {@link #SFT}, {@link #DPO}, {@link #PPO} or {@link #BEST_OF_N}
 * @param series the line the point belongs to in the chart and tables ({@code DPO β=0.1}, {@code PPO kl_coef=0.05},
 *     {@code best-of-n (oracle)}, {@code π_SFT})
 * @param coefficient the KL coefficient of the objective (DPO's beta, PPO's kl_coef); n for best-of-n; 0 for SFT
 * @param step the checkpoint's training step; n for best-of-n; 0 for SFT
 * @param last the series' final policy (a run's last step; every best-of-n point)
 * @param reward mean reward over prompts (each prompt's mean over its samples), with its interval
 * @param improvement paired difference against pi_SFT per prompt (best-of-n: against its own pool's pi_SFT mean);
 *     null for SFT
 * @param kl KL(pi || pi_SFT) in nats per continuation: sampled (with its interval) or analytic ({@code klAnalytic},
 *     {@code klLow == klHigh == kl})
 */
public record FrontierPoint(String method, String series, double coefficient, long step, boolean last,
    MeanWithInterval reward, MeanWithInterval improvement, double kl, double klLow, double klHigh,
    boolean klAnalytic) {
  public static final String SFT = "sft";
  public static final String DPO = "dpo";
  public static final String PPO = "ppo";
  public static final String BEST_OF_N = "best-of-n";

  /** pi_SFT itself: KL 0 by definition. */
  public static FrontierPoint sft(MeanWithInterval reward) {
    return new FrontierPoint(SFT, "π_SFT", 0, 0, true, reward, null, 0, 0, 0, false);
  }

  /** A trained policy's checkpoint evaluated by sampling. */
  public static FrontierPoint trained(String method, String series, double coefficient, PolicyEval p, boolean last) {
    MeanWithInterval kl = p.kl().perSequence();
    return new FrontierPoint(method, series, coefficient, p.step(), last, p.reward(), p.improvement(), kl.mean(),
        kl.low(), kl.high(), false);
  }

  /**
   * Best-of-n at one n of {@code best_of_n.json} ({@code source}): the KL is the analytic {@code log n - (n-1)/n},
   * checked against the file's; a point whose interval does not hold its mean, or a non-finite value, is refused
   * naming the file and the field.
   */
  public static FrontierPoint bestOfN(String series, BestOfNReport r, int i, String source) {
    BestOfNReport.Point p = r.points().get(i);
    String at = source + ": field points[" + i + "].";
    if (p.n() < 1 || Math.abs(p.kl() - BestOfN.klEstimate(p.n())) > 1e-9) {
      throw new IllegalArgumentException(at + "kl is " + p.kl() + ", not log n - (n-1)/n for n = " + p.n());
    }
    return new FrontierPoint(BEST_OF_N, series, p.n(), p.n(), true,
        interval(p.rewardMean(), p.rewardLow(), p.rewardHigh(), r.confidence(), r.prompts(), at + "reward"),
        interval(p.improvementMean(), p.improvementLow(), p.improvementHigh(), r.confidence(), r.prompts(),
            at + "improvement"), p.kl(), p.kl(), p.kl(), true);
  }

  /**
   * An interval from its ends, its standard error recovered from the half-width of the symmetric t-interval over
   * {@code n} prompts that {@link MeanWithInterval#of} builds (for Welch's interval of a difference).
   */
  static MeanWithInterval interval(double mean, double low, double high, double confidence, int n, String field) {
    if (!(Double.isFinite(mean) && Double.isFinite(low) && Double.isFinite(high) && low <= mean && mean <= high)) {
      throw new IllegalArgumentException(field + "_low/_mean/_high must be finite with low <= mean <= high, got "
          + low + ", " + mean + ", " + high);
    }
    if (n < 2 || !(confidence > 0 && confidence < 1)) {
      throw new IllegalArgumentException(field + ": needs prompts >= 2 and confidence in (0, 1), got " + n + " and "
          + confidence);
    }
    double t = Quantiles.studentT(1 - (1 - confidence) / 2, n - 1);
    return new MeanWithInterval(mean, low, high, confidence, n, (high - low) / 2 / t);
  }

  /** A name for this point in tables and verdicts: the series, and its step or n. */
  public String name() {
    return switch (method) {
      case SFT -> series;
      case BEST_OF_N -> "best-of-" + step + series.substring(series.indexOf(' ') < 0 ? series.length()
          : series.indexOf(' '));
      default -> series + ", step " + step;
    };
  }

  /** The key under which per-prompt rewards are looked up: series and step. */
  public String key() {
    return series + "@" + step;
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "%s: reward %s at KL %s", name(), ReportFormat.num(reward.mean()),
        ReportFormat.num(kl));
  }
}
