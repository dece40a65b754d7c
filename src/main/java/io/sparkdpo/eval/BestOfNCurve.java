package io.sparkdpo.eval;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Best-of-n points as the {@code best-of-n} stage writes them ({@code OUT/best_of_n.json}), read for the RLHF-vs-DPO
 * frontier. Each point is one n: the ground-truth reward of the continuation the selector kept, with its interval
 * over prompts, the improvement over pi_SFT (paired per prompt against the mean of all n-pool samples of that
 * prompt), and the analytic KL {@code log n - (n-1)/n} ({@link BestOfN#klEstimate}), which is not a sampled estimate.
 *
 * @param selector the reward model folder, or {@code oracle:<reward name>}
 * @param selectorKind {@code reward_model} or {@code oracle}
 * @param reward the ground-truth reward's name
 * @param klEstimate how the KL was obtained, as the file states it
 */
public record BestOfNCurve(String source, String selector, String selectorKind, String reward, double confidence,
    int prompts, int samplesPerPrompt, String klEstimate, List<Point> points) {
  public static final String FILE = "best_of_n.json";

  public BestOfNCurve {
    points = List.copyOf(points);
  }

  /** One n of the curve. */
  public record Point(int n, MeanWithInterval reward, MeanWithInterval improvement, double selectorScore,
      double kl) {}

  /** Reads {@code dir/best_of_n.json}; a missing or malformed field is an error naming the file and the field. */
  public static BestOfNCurve read(Storage storage, String dir) {
    String path = Storage.join(dir, FILE);
    if (!storage.exists(path)) {
      throw new IllegalArgumentException(dir + " holds no best-of-n result: " + FILE + " is missing (run the "
          + "best-of-n stage first)");
    }
    JsonNode root;
    try {
      root = Json.MAPPER.readTree(storage.readBytes(path));
    } catch (IOException e) {
      throw new IllegalArgumentException(path + " is not valid JSON: " + e.getMessage(), e);
    }
    Fields f = new Fields(path);
    String kind = f.text(root, "selector_kind");
    if (!kind.equals("reward_model") && !kind.equals("oracle")) {
      throw new IllegalArgumentException(path + ": field selector_kind must be reward_model or oracle, got '"
          + kind + "'");
    }
    double confidence = f.number(root, "confidence");
    int prompts = (int) f.number(root, "prompts");
    JsonNode list = root.path("points");
    if (!list.isArray() || list.isEmpty()) {
      throw new IllegalArgumentException(path + ": field points must be a non-empty array");
    }
    List<Point> points = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      JsonNode p = list.get(i);
      String at = "points[" + i + "].";
      int n = (int) f.number(p, at, "n");
      if (n < 1) {
        throw new IllegalArgumentException(path + ": field " + at + "n must be >= 1, got " + n);
      }
      double kl = f.number(p, at, "kl");
      if (Math.abs(kl - BestOfN.klEstimate(n)) > 1e-9) {
        throw new IllegalArgumentException(path + ": field " + at + "kl is " + kl + ", not log n - (n-1)/n = "
            + BestOfN.klEstimate(n) + " for n = " + n);
      }
      points.add(new Point(n,
          interval(f.number(p, at, "reward_mean"), f.number(p, at, "reward_low"), f.number(p, at, "reward_high"),
              confidence, prompts),
          interval(f.number(p, at, "improvement_mean"), f.number(p, at, "improvement_low"),
              f.number(p, at, "improvement_high"), confidence, prompts),
          f.number(p, at, "selector_score"), kl));
    }
    return new BestOfNCurve(dir, f.text(root, "selector"), kind, f.text(root, "reward"), confidence, prompts,
        (int) f.number(root, "samples_per_prompt"), f.text(root, "kl_estimate"), points);
  }

  /**
   * An interval from its ends: the standard error is recovered from the half-width, assuming the symmetric t-interval
   * over {@code n} prompts that {@link MeanWithInterval#of} builds.
   */
  static MeanWithInterval interval(double mean, double low, double high, double confidence, int n) {
    double t = Quantiles.studentT(1 - (1 - confidence) / 2, Math.max(1, n - 1));
    return new MeanWithInterval(mean, low, high, confidence, n, (high - low) / 2 / t);
  }

  /** Field access that names the file and the field when something is missing or of the wrong type. */
  private record Fields(String path) {
    String text(JsonNode node, String name) {
      JsonNode v = node.path(name);
      if (!v.isTextual()) {
        throw new IllegalArgumentException(path + ": field " + name + " is missing or not a string");
      }
      return v.asText();
    }

    double number(JsonNode node, String name) {
      return number(node, "", name);
    }

    double number(JsonNode node, String prefix, String name) {
      JsonNode v = node.path(name);
      if (!v.isNumber() || !Double.isFinite(v.asDouble())) {
        throw new IllegalArgumentException(path + ": field " + prefix + name + " is missing or not a finite number");
      }
      return v.asDouble();
    }
  }
}
