package io.sparkdpo.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import io.sparkdpo.config.EvaluateSettings;
import io.sparkdpo.io.Json;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The result of the generation-based evaluation: pi_SFT's mean ground-truth reward on the held-out prompts, and
 * every policy checkpoint measured against it (reward, paired improvement, win rate, sampled KL), plus a few
 * side-by-side example continuations for the report. Round-trips through JSON ({@code generation.json}).
 *
 * @param reward the reward's {@link RewardFunction#name()}
 * @param sampling how the continuations were sampled
 * @param confidence the level of every interval
 * @param sftReward pi_SFT's mean reward over prompts (each prompt's mean over its samples)
 * @param policies one entry per (run, checkpoint)
 * @param examples continuations of the same prompt by pi_SFT and a policy
 */
public record GenerationEval(String reward, Sampling sampling, double confidence, MeanWithInterval sftReward,
    List<PolicyEval> policies, List<Example> examples) {
  /** Sorted keys as every project file; snake_case keys as the config and metrics.json. */
  private static final ObjectMapper JSON = Json.MAPPER.copy()
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

  public GenerationEval {
    policies = List.copyOf(policies);
    examples = List.copyOf(examples);
  }

  /** Sampling settings, as run (prompts is the number actually used). */
  public record Sampling(int prompts, int samplesPerPrompt, int maxNewTokens, double temperature, int topK,
      double topP, long seed) {

    public static Sampling of(EvaluateSettings s, int promptsUsed) {
      return new Sampling(promptsUsed, s.samplesPerPrompt(), s.maxNewTokens(), s.temperature(), s.topK(), s.topP(),
          s.seed());
    }

    /** True when samples come from the model's own distribution, which the sampled KL estimate assumes. */
    public boolean unfiltered() {
      return temperature == 1.0 && topK == 0 && topP == 1.0;
    }
  }

  /** One prompt's continuation by pi_SFT and by a policy, with their rewards. */
  public record Example(String prompt, String sftContinuation, double sftReward, String policyLabel,
      String policyContinuation, double policyReward) {}

  /** Starts a result from pi_SFT's rewards, [prompt][sample]. */
  public static Builder builder(String reward, Sampling sampling, double confidence, double[][] sftRewards) {
    return new Builder(reward, sampling, confidence, sftRewards);
  }

  /** Collects policies measured against one fixed set of pi_SFT samples. */
  public static final class Builder {
    private final String reward;
    private final Sampling sampling;
    private final double confidence;
    private final double[][] sftRewards;
    private final List<PolicyEval> policies = new ArrayList<>();
    private final List<Example> examples = new ArrayList<>();

    private Builder(String reward, Sampling sampling, double confidence, double[][] sftRewards) {
      if (sftRewards.length != sampling.prompts()) {
        throw new IllegalArgumentException("SFT was sampled on " + sftRewards.length + " prompts, the sampling "
            + "settings say " + sampling.prompts());
      }
      this.reward = reward;
      this.sampling = sampling;
      this.confidence = confidence;
      this.sftRewards = sftRewards;
    }

    /** Measures a checkpoint; see {@link PolicyEval#measure} for the arrays. */
    public Builder addPolicy(String label, double beta, long step, double[][] policyRewards,
        double[][] policyTokenLogps, double[][] sftTokenLogps) {
      policies.add(PolicyEval.measure(label, beta, step, policyRewards, sftRewards, policyTokenLogps,
          sftTokenLogps, confidence));
      return this;
    }

    public Builder addExample(Example example) {
      examples.add(example);
      return this;
    }

    public GenerationEval build() {
      double[] sft = PolicyEval.perPromptMeans(sftRewards, "SFT");
      return new GenerationEval(reward, sampling, confidence, MeanWithInterval.of(sft, confidence), policies,
          examples);
    }
  }

  /** Each run's last checkpoint, in the order runs first appear. */
  public List<PolicyEval> finalCheckpoints() {
    Map<String, PolicyEval> last = new LinkedHashMap<>();
    for (PolicyEval p : policies) {
      last.merge(p.label(), p, (a, b) -> b.step() >= a.step() ? b : a);
    }
    return List.copyOf(last.values());
  }

  /**
   * The headline comparison: among the runs' last checkpoints, the one with the largest mean reward improvement.
   * Every other run's verdict is reported next to it, so picking the best does not hide the rest.
   */
  public Optional<PolicyEval> headline() {
    return finalCheckpoints().stream().max(Comparator.comparingDouble(p -> p.improvement().mean()));
  }

  public String toJson() {
    try {
      return JSON.writeValueAsString(this);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  public static GenerationEval fromJson(String json, String source) {
    try {
      return JSON.readValue(json, GenerationEval.class);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(source + ": not a generation evaluation: " + e.getOriginalMessage(), e);
    }
  }
}
