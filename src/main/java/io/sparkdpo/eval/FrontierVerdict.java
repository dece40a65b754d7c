package io.sparkdpo.eval;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Whether DPO's reward-versus-KL frontier dominates PPO's, as the DPO paper's first experiment claims, decided from
 * the evaluated points and their intervals rather than by eye:
 * <ol>
 *   <li>for each PPO point (every evaluated checkpoint of every kl_coef), the DPO points whose KL per continuation is
 *       no larger (point estimates), and among them the one with the highest mean reward;</li>
 *   <li>the difference DPO - PPO in mean reward with its interval: paired per prompt when both were sampled on the
 *       same prompts (their per-prompt means are given), else Welch's interval from the two means;</li>
 *   <li>that PPO point is {@code DPO_AHEAD} when the interval lies above 0, {@code PPO_AHEAD} below 0,
 *       {@code NOT_DISTINGUISHABLE} across 0, {@code NO_DPO_POINT} when no DPO point has so little KL;</li>
 *   <li>overall: DPO dominates only if it is ahead at every PPO point; any PPO point ahead means it does not; else
 *       the frontiers are not distinguishable with these samples.</li>
 * </ol>
 * Each interval is at the evaluation's confidence on its own (no correction for comparing several points), and the KL
 * is compared by its estimate, not its interval: the text says so.
 */
public record FrontierVerdict(Overall overall, String text, List<Comparison> comparisons) {

  public FrontierVerdict {
    comparisons = List.copyOf(comparisons);
  }

  /** The outcome at one PPO point. */
  public enum Outcome { DPO_AHEAD, NOT_DISTINGUISHABLE, PPO_AHEAD, NO_DPO_POINT }

  /** The outcome over all PPO points. */
  public enum Overall { DPO_DOMINATES, NOT_DISTINGUISHABLE, DPO_DOES_NOT_DOMINATE, NOTHING_TO_COMPARE }

  /**
   * One PPO point against the best DPO point at no more KL.
   *
   * @param dpo null when no DPO point has KL at most the PPO point's
   * @param difference DPO - PPO mean reward with its interval; null without a DPO point
   * @param paired the interval is of paired per-prompt differences (else Welch's, from the two means)
   */
  public record Comparison(FrontierPoint ppo, FrontierPoint dpo, MeanWithInterval difference, boolean paired,
      Outcome outcome) {}

  /**
   * @param points every point of the frontier (methods other than DPO and PPO are ignored)
   * @param perPromptRewards each sampled point's per-prompt mean rewards by {@link FrontierPoint#key()}, all over the
   *     same prompts in the same order; a point missing here is compared through Welch's interval
   */
  public static FrontierVerdict of(List<FrontierPoint> points, Map<String, double[]> perPromptRewards,
      double confidence) {
    List<FrontierPoint> dpo = points.stream().filter(p -> p.method().equals(FrontierPoint.DPO)).toList();
    List<FrontierPoint> ppo = points.stream().filter(p -> p.method().equals(FrontierPoint.PPO))
        .sorted(Comparator.comparingDouble(FrontierPoint::kl)).toList();
    if (ppo.isEmpty() || dpo.isEmpty()) {
      return new FrontierVerdict(Overall.NOTHING_TO_COMPARE, "no verdict: the frontier needs DPO and PPO points "
          + "(" + dpo.size() + " DPO, " + ppo.size() + " PPO)", List.of());
    }
    List<Comparison> comparisons = new ArrayList<>();
    for (FrontierPoint p : ppo) {
      Optional<FrontierPoint> best = dpo.stream().filter(d -> d.kl() <= p.kl())
          .max(Comparator.comparingDouble(d -> d.reward().mean()));
      if (best.isEmpty()) {
        comparisons.add(new Comparison(p, null, null, false, Outcome.NO_DPO_POINT));
        continue;
      }
      FrontierPoint d = best.get();
      double[] a = perPromptRewards.get(d.key());
      double[] b = perPromptRewards.get(p.key());
      boolean paired = a != null && b != null && a.length == b.length;
      MeanWithInterval diff = paired ? MeanWithInterval.ofPairedDifferences(a, b, confidence)
          : welch(d.reward(), p.reward(), confidence);
      Outcome o = diff.excludesZeroAbove() ? Outcome.DPO_AHEAD
          : diff.excludesZeroBelow() ? Outcome.PPO_AHEAD : Outcome.NOT_DISTINGUISHABLE;
      comparisons.add(new Comparison(p, d, diff, paired, o));
    }
    return new FrontierVerdict(overall(comparisons), text(comparisons, confidence), comparisons);
  }

  /**
   * The interval of the difference of two independent means from their standard errors, with Welch-Satterthwaite's
   * degrees of freedom; wider than the paired interval when both share prompts (it ignores their correlation).
   */
  static MeanWithInterval welch(MeanWithInterval a, MeanWithInterval b, double confidence) {
    double va = a.standardError() * a.standardError();
    double vb = b.standardError() * b.standardError();
    double se = Math.sqrt(va + vb);
    double df = se == 0 ? Math.max(1, Math.min(a.n(), b.n()) - 1)
        : (va + vb) * (va + vb) / (va * va / Math.max(1, a.n() - 1) + vb * vb / Math.max(1, b.n() - 1));
    double half = Quantiles.studentT(1 - (1 - confidence) / 2, df) * se;
    double mean = a.mean() - b.mean();
    return new MeanWithInterval(mean, mean - half, mean + half, confidence, Math.min(a.n(), b.n()), se);
  }

  private static Overall overall(List<Comparison> comparisons) {
    if (comparisons.stream().anyMatch(c -> c.outcome() == Outcome.PPO_AHEAD)) {
      return Overall.DPO_DOES_NOT_DOMINATE;
    }
    if (comparisons.stream().allMatch(c -> c.outcome() == Outcome.DPO_AHEAD)) {
      return Overall.DPO_DOMINATES;
    }
    return Overall.NOT_DISTINGUISHABLE;
  }

  private static String text(List<Comparison> comparisons, double confidence) {
    long ahead = count(comparisons, Outcome.DPO_AHEAD);
    long even = count(comparisons, Outcome.NOT_DISTINGUISHABLE);
    long behind = count(comparisons, Outcome.PPO_AHEAD);
    long uncovered = count(comparisons, Outcome.NO_DPO_POINT);
    int n = comparisons.size();
    String ci = ReportFormat.percent(confidence) + " CI";
    StringBuilder t = new StringBuilder();
    switch (overall(comparisons)) {
      case DPO_DOMINATES -> {
        Comparison closest = comparisons.stream().min(Comparator.comparingDouble(c -> c.difference().low())).get();
        t.append("DPO's frontier dominates PPO's: at each of the ").append(n).append(" PPO point")
            .append(n == 1 ? "" : "s").append(" a DPO policy with no more KL has a higher mean reward (").append(ci)
            .append(" of the difference above 0; closest: ").append(describe(closest)).append(')');
      }
      case DPO_DOES_NOT_DOMINATE -> {
        Comparison worst = comparisons.stream().filter(c -> c.outcome() == Outcome.PPO_AHEAD)
            .min(Comparator.comparingDouble(c -> c.difference().high())).get();
        t.append("DPO's frontier does not dominate PPO's: at ").append(behind).append(" of ").append(n)
            .append(" PPO point").append(n == 1 ? "" : "s").append(" every DPO policy with no more KL has a lower ")
            .append("mean reward (").append(ci).append(" below 0; e.g. ").append(describe(worst)).append(')');
      }
      default -> {
        t.append("Not distinguishable: DPO's frontier is not shown to dominate PPO's, nor PPO's DPO's, with these ")
            .append("samples (").append(ahead).append(" of ").append(n).append(" PPO point").append(n == 1 ? "" : "s")
            .append(" with DPO ahead, ").append(even).append(" with overlapping intervals");
        if (uncovered > 0) {
          t.append(", ").append(uncovered).append(" with no DPO point at so little KL");
        }
        t.append(')');
      }
    }
    t.append(". KL compared by its estimate; each interval at ").append(ReportFormat.percent(confidence))
        .append(" on its own.");
    return t.toString();
  }

  private static String describe(Comparison c) {
    return c.ppo().name() + " at KL " + ReportFormat.num(c.ppo().kl()) + " vs " + c.dpo().name() + " at KL "
        + ReportFormat.num(c.dpo().kl()) + ": DPO − PPO " + ReportFormat.signed(c.difference().mean()) + " ["
        + ReportFormat.num(c.difference().low()) + ", " + ReportFormat.num(c.difference().high()) + "]";
  }

  private static long count(List<Comparison> comparisons, Outcome o) {
    return comparisons.stream().filter(c -> c.outcome() == o).count();
  }
}
