package io.sparkdpo.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Turns K sampled continuations per prompt into preference pairs by a ground-truth reward: the highest-scored
 * continuation is {@code chosen}, the lowest {@code rejected} (the first one sampled wins a tie for either place).
 * A prompt whose continuations all score the same has no preference and is dropped, and so is one whose best and
 * worst continuations are the same text. The pairs are TRL rows ({@code prompt}, {@code chosen}, {@code rejected}
 * strings) that the {@code prepare} stage reads with {@code format: trl}.
 */
public final class PreferenceLabeler {
  private final RewardFunction reward;

  public PreferenceLabeler(RewardFunction reward) {
    this.reward = reward;
  }

  /** A prompt and the continuations sampled for it, in sampling order. */
  public record PromptSamples(String prompt, List<String> continuations) {
    public PromptSamples {
      continuations = List.copyOf(continuations);
    }
  }

  /** One preference pair with the rewards that decided it. */
  public record LabeledPair(String prompt, String chosen, String rejected, double chosenReward,
      double rejectedReward) {

    /** The TRL row as one compact JSON line (no newline). */
    public String toTrlJsonLine() {
      Map<String, String> row = new LinkedHashMap<>();
      row.put("prompt", prompt);
      row.put("chosen", chosen);
      row.put("rejected", rejected);
      try {
        return Json.LINES.writeValueAsString(row);
      } catch (JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /** The pairs kept and how many prompts were dropped for want of a preference. */
  public record Result(List<LabeledPair> pairs, int prompts, int droppedTies, int droppedIdenticalTexts) {
    public Result {
      pairs = List.copyOf(pairs);
    }
  }

  /** Scores every continuation with the reward, then labels each prompt. */
  public Result label(List<PromptSamples> samples) {
    List<double[]> rewards = new ArrayList<>();
    for (int i = 0; i < samples.size(); i++) {
      PromptSamples s = samples.get(i);
      double[] r = new double[s.continuations().size()];
      for (int k = 0; k < r.length; k++) {
        r[k] = reward.score(s.prompt(), s.continuations().get(k));
      }
      rewards.add(r);
    }
    return labelScored(samples, rewards, reward.name());
  }

  /**
   * Labels continuations scored elsewhere (on Spark executors, say): {@code rewards.get(i)[k]} is the reward of
   * prompt i's continuation k, from the reward called {@code rewardName}.
   */
  public static Result labelScored(List<PromptSamples> samples, List<double[]> rewards, String rewardName) {
    if (samples.size() != rewards.size()) {
      throw new IllegalArgumentException(samples.size() + " prompts but " + rewards.size() + " reward lists");
    }
    List<LabeledPair> pairs = new ArrayList<>();
    int ties = 0;
    int identical = 0;
    for (int i = 0; i < samples.size(); i++) {
      PromptSamples s = samples.get(i);
      if (s.continuations().size() < 2) {
        throw new IllegalArgumentException("prompt " + i + " has " + s.continuations().size()
            + " continuation(s); labelling needs at least 2");
      }
      double[] r = rewards.get(i);
      for (int k = 0; k < r.length; k++) {
        if (!Double.isFinite(r[k])) {
          throw new IllegalArgumentException("reward " + rewardName + " gave " + r[k] + " for prompt "
              + i + ", continuation " + k + "; rewards must be finite");
        }
      }
      Optional<LabeledPair> pair = pick(s.prompt(), s.continuations(), r);
      if (pair.isPresent()) {
        pairs.add(pair.get());
      } else if (max(r) == min(r)) {
        ties++;
      } else {
        identical++;
      }
    }
    return new Result(pairs, samples.size(), ties, identical);
  }

  /** The pair for already-scored continuations; empty when there is no preference. */
  public static Optional<LabeledPair> pick(String prompt, List<String> continuations, double[] rewards) {
    if (continuations.size() != rewards.length) {
      throw new IllegalArgumentException(continuations.size() + " continuations but " + rewards.length + " rewards");
    }
    int best = 0;
    int worst = 0;
    for (int k = 1; k < rewards.length; k++) {
      if (rewards[k] > rewards[best]) {
        best = k;
      }
      if (rewards[k] < rewards[worst]) {
        worst = k;
      }
    }
    if (rewards.length < 2 || rewards[best] == rewards[worst]
        || continuations.get(best).equals(continuations.get(worst))) {
      return Optional.empty();
    }
    return Optional.of(new LabeledPair(prompt, continuations.get(best), continuations.get(worst), rewards[best],
        rewards[worst]));
  }

  /** Writes the pairs as TRL JSON lines (UTF-8, one pair per line) to a local, hdfs: or s3a: path. */
  public static void writeTrlJsonl(Storage storage, String path, List<LabeledPair> pairs) {
    try (OutputStream out = storage.create(path)) {
      for (LabeledPair p : pairs) {
        out.write(p.toTrlJsonLine().getBytes(StandardCharsets.UTF_8));
        out.write('\n');
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
    }
  }

  private static double max(double[] xs) {
    double m = xs[0];
    for (double x : xs) {
      m = Math.max(m, x);
    }
    return m;
  }

  private static double min(double[] xs) {
    double m = xs[0];
    for (double x : xs) {
      m = Math.min(m, x);
    }
    return m;
  }
}
