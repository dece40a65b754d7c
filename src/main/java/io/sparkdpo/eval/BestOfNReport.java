package io.sparkdpo.eval;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code best_of_n.json}: best-of-n from pi_SFT evaluated like a policy, one point per n. Per prompt the selector's
 * best of the first n samples is kept and scored by the ground-truth reward ({@link BestOfN}); its improvement is the
 * paired difference against pi_SFT's per-prompt mean reward over all the prompt's samples (best-of-1 averaged over
 * the whole pool), with a t-interval. The KL is the analytic {@code log n - (n-1)/n}, not measured, and
 * {@code kl_estimate} says so.
 *
 * @param selector the reward model folder, or {@code oracle:<reward name>}
 * @param selectorKind {@code reward_model} or {@code oracle}
 * @param reward the ground-truth reward's name
 * @param samplesPerPrompt the pool: samples drawn per prompt (the largest n)
 */
public record BestOfNReport(
    @JsonProperty("selector") String selector,
    @JsonProperty("selector_kind") String selectorKind,
    @JsonProperty("reward") String reward,
    @JsonProperty("confidence") double confidence,
    @JsonProperty("prompts") int prompts,
    @JsonProperty("samples_per_prompt") int samplesPerPrompt,
    @JsonProperty("kl_estimate") String klEstimate,
    @JsonProperty("points") List<Point> points) {
  public static final String FILE = "best_of_n.json";
  public static final String KL_ESTIMATE = "analytic: log n - (n-1)/n (not measured)";

  public BestOfNReport {
    points = List.copyOf(points);
  }

  /** One n: the kept samples' ground-truth reward and selector score, the analytic KL, the paired improvement. */
  public record Point(
      @JsonProperty("n") int n,
      @JsonProperty("reward_mean") double rewardMean,
      @JsonProperty("reward_low") double rewardLow,
      @JsonProperty("reward_high") double rewardHigh,
      @JsonProperty("selector_score") double selectorScore,
      @JsonProperty("kl") double kl,
      @JsonProperty("improvement_mean") double improvementMean,
      @JsonProperty("improvement_low") double improvementLow,
      @JsonProperty("improvement_high") double improvementHigh) {}

  /**
   * @param selectorScores per prompt, the selector's score of each sample of the pool
   * @param trueRewards per prompt, the ground-truth reward of the same samples (the same values for an oracle)
   * @param ns the n to evaluate, each at most the pool's size
   */
  public static BestOfNReport of(String selector, String selectorKind, String reward, double confidence,
      double[][] selectorScores, double[][] trueRewards, List<Integer> ns) {
    if (trueRewards.length < 2) {
      throw new IllegalArgumentException("best-of-n needs at least 2 prompts for an interval, got "
          + trueRewards.length);
    }
    int pool = trueRewards[0].length;
    double[] sftMean = new double[trueRewards.length];
    for (int p = 0; p < trueRewards.length; p++) {
      if (trueRewards[p].length != pool) {
        throw new IllegalArgumentException("prompt " + p + " has " + trueRewards[p].length + " samples, prompt 0 has "
            + pool);
      }
      double sum = 0;
      for (double r : trueRewards[p]) {
        sum += r;
      }
      sftMean[p] = sum / pool;
    }
    List<Point> points = new ArrayList<>();
    for (int n : ns) {
      BestOfN.Result r = BestOfN.evaluate(selectorScores, trueRewards, n, confidence);
      double[] kept = new double[trueRewards.length];
      for (int p = 0; p < kept.length; p++) {
        kept[p] = trueRewards[p][BestOfN.best(selectorScores[p], n)];
      }
      MeanWithInterval d = MeanWithInterval.ofPairedDifferences(kept, sftMean, confidence);
      points.add(new Point(n, r.reward().mean(), r.reward().low(), r.reward().high(), r.selectorScore(), r.kl(),
          d.mean(), d.low(), d.high()));
    }
    return new BestOfNReport(selector, selectorKind, reward, confidence, trueRewards.length, pool, KL_ESTIMATE,
        points);
  }

  public void write(Storage storage, String dir) {
    storage.writeJson(Storage.join(dir, FILE), this);
  }

  /** Reads {@code DIR/best_of_n.json}. */
  public static BestOfNReport read(Storage storage, String dir) {
    String path = Storage.join(dir, FILE);
    if (!storage.exists(path)) {
      throw new IllegalArgumentException(dir + " holds no best-of-n result: " + FILE + " is missing (run spark-dpo "
          + "best-of-n)");
    }
    try {
      return Json.MAPPER.readValue(storage.readBytes(path), BestOfNReport.class);
    } catch (IOException e) {
      throw new UncheckedIOException(path + " cannot be parsed: " + e.getMessage(), e);
    }
  }
}
