package io.sparkdpo.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The RLHF-vs-DPO comparison on one reward-versus-KL frontier (the DPO paper's first experiment): pi_SFT, every
 * evaluated DPO and PPO checkpoint, best-of-n at each n, all scored by the same ground-truth reward on the same
 * held-out prompts, and the {@link FrontierVerdict}. Round-trips through JSON ({@code frontier.json}).
 *
 * @param bestOfN the best-of-n result the points came from; null when none was evaluated
 * @param bestOfNSource the folder holding it
 */
public record Frontier(String reward, double confidence, List<FrontierPoint> points, FrontierVerdict verdict,
    BestOfNReport bestOfN, String bestOfNSource) {
  private static final ObjectMapper JSON = Json.MAPPER.copy()
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

  public Frontier {
    points = List.copyOf(points);
  }

  /**
   * How one evaluated run enters the frontier.
   *
   * @param label the run's label in the {@link GenerationEval} ({@code β=0.1}, {@code PPO kl_coef=0.05})
   * @param method {@link FrontierPoint#DPO} or {@link FrontierPoint#PPO}
   * @param coefficient DPO's beta or PPO's kl_coef
   * @param series its name on the frontier ({@code DPO β=0.1})
   */
  public record Run(String label, String method, double coefficient, String series) {}

  /**
   * @param runs how each label of {@code gen} enters; a label not listed is left out
   * @param bestOfN best-of-n points on the same prompts (null: none), read from the folder {@code bestOfNSource}
   * @param perPromptRewards per-prompt mean rewards by run label and step ({@code label@step}), for paired intervals
   */
  public static Frontier of(GenerationEval gen, List<Run> runs, BestOfNReport bestOfN, String bestOfNSource,
      Map<String, double[]> perPromptRewards) {
    String file = bestOfN == null ? null : Storage.join(bestOfNSource, BestOfNReport.FILE);
    if (bestOfN != null && !bestOfN.reward().equals(gen.reward())) {
      throw new IllegalArgumentException(file + ": field reward is " + bestOfN.reward() + ", the evaluation's "
          + "reward is " + gen.reward() + ": one frontier needs one ground-truth reward");
    }
    Map<String, Run> byLabel = new HashMap<>();
    runs.forEach(r -> byLabel.put(r.label(), r));
    Map<String, Long> lastStep = new HashMap<>();
    gen.finalCheckpoints().forEach(p -> lastStep.put(p.label(), p.step()));
    List<FrontierPoint> points = new ArrayList<>();
    points.add(FrontierPoint.sft(gen.sftReward()));
    Map<String, double[]> byKey = new HashMap<>();
    for (PolicyEval p : gen.policies()) {
      Run r = byLabel.get(p.label());
      if (r == null) {
        continue;
      }
      FrontierPoint point = FrontierPoint.trained(r.method(), r.series(), r.coefficient(), p,
          lastStep.get(p.label()) == p.step());
      points.add(point);
      double[] perPrompt = perPromptRewards.get(p.label() + "@" + p.step());
      if (perPrompt != null) {
        byKey.put(point.key(), perPrompt);
      }
    }
    if (bestOfN != null) {
      points.addAll(bestOfNPoints(bestOfN, bestOfNSource));
    }
    return new Frontier(gen.reward(), gen.confidence(), points, FrontierVerdict.of(points, byKey, gen.confidence()),
        bestOfN, bestOfNSource);
  }

  /**
   * Best-of-n's points, one per n, checked (the analytic KL, ordered finite intervals): call it before sampling
   * anything so a bad file fails first.
   */
  public static List<FrontierPoint> bestOfNPoints(BestOfNReport bestOfN, String source) {
    String file = Storage.join(source, BestOfNReport.FILE);
    if (bestOfN.points().isEmpty()) {
      throw new IllegalArgumentException(file + ": field points is empty");
    }
    String series = "best-of-n (" + (bestOfN.selectorKind().equals("oracle") ? "oracle" : "reward model") + ")";
    List<FrontierPoint> points = new ArrayList<>();
    for (int i = 0; i < bestOfN.points().size(); i++) {
      points.add(FrontierPoint.bestOfN(series, bestOfN, i, file));
    }
    return points;
  }

  /** The points of one method, in the order added. */
  public List<FrontierPoint> points(String method) {
    return points.stream().filter(p -> p.method().equals(method)).toList();
  }

  public String toJson() {
    try {
      return JSON.writeValueAsString(this);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  public static Frontier fromJson(String json, String source) {
    try {
      return JSON.readValue(json, Frontier.class);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(source + ": not a frontier: " + e.getOriginalMessage(), e);
    }
  }
}
