package io.sparkdpo.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import org.knowm.xchart.XYChart;

/**
 * Writes the {@code evaluate} stage's report into an output folder (local, hdfs: or s3a:): {@code metrics.json}
 * (headline numbers, sorted keys), {@code generation.json} (the full {@link GenerationEval}), PNG charts and
 * {@code report.html}, which embeds the charts and links to their files.
 */
public final class EvaluationReport {
  public static final String METRICS_JSON = "metrics.json";
  public static final String GENERATION_JSON = "generation.json";
  public static final String REPORT_HTML = "report.html";
  public static final String LOSS_PNG = "training-loss.png";
  public static final String ACCURACIES_PNG = "eval-accuracies.png";
  public static final String MARGINS_PNG = "eval-margins.png";
  public static final String FRONTIER_PNG = "reward-vs-kl.png";
  public static final String FRONTIER_JSON = "frontier.json";
  public static final String PPO_SCORES_PNG = "ppo-scores.png";
  public static final String PPO_KL_PNG = "ppo-kl.png";
  /** The PPO training metrics metrics.json repeats per PPO run (their last values; TRL's PPOTrainer names). */
  static final List<String> PPO_KEYS = List.of("objective/scores", "objective/kl", "objective/rlhf_reward",
      "loss/policy_avg", "loss/value_avg");
  /** The training metrics metrics.json repeats per run (their last values). */
  static final List<String> TRAINING_KEYS = List.of("loss", "eval/loss", "eval/rewards/accuracies",
      "eval/rewards/margins", "eval/rewards/chosen", "eval/rewards/rejected");

  private EvaluationReport() {}

  /** The files written, as full paths. */
  public record Written(String html, String metricsJson, String generationJson, List<String> charts) {
    public Written {
      charts = List.copyOf(charts);
    }
  }

  /**
   * @param runs the training runs (one per beta), in legend order
   * @param gen the generation-based evaluation of their checkpoints
   */
  public static Written write(Storage storage, String outDir, List<TrainingRun> runs, GenerationEval gen) {
    return write(storage, outDir, runs, gen, null, Map.of());
  }

  /**
   * @param evalData the eval split the policies were scored on by the evaluation itself (null: none)
   * @param evalSplit those scores by run label; shown in the page and in each run's {@code eval_split} entry
   */
  public static Written write(Storage storage, String outDir, List<TrainingRun> runs, GenerationEval gen,
      String evalData, Map<String, EvalSplitMetrics> evalSplit) {
    return write(storage, outDir, runs, gen, evalData, evalSplit, null, List.of());
  }

  /**
   * @param runs the DPO training runs
   * @param comparison the RLHF-vs-DPO frontier (PPO runs, best-of-n) drawn as the reward-vs-KL chart, with its table
   *     and verdict, and written to {@code frontier.json}; null: the DPO runs' frontier only
   * @param ppoRuns the PPO runs' training metrics (their score and KL by step are charted)
   */
  public static Written write(Storage storage, String outDir, List<TrainingRun> runs, GenerationEval gen,
      String evalData, Map<String, EvalSplitMetrics> evalSplit, Frontier comparison, List<TrainingRun> ppoRuns) {
    List<String> labels = new ArrayList<>();
    runs.forEach(r -> labels.add(r.label()));
    gen.policies().forEach(p -> labels.add(p.label()));
    ReportCharts charts = new ReportCharts(labels);

    storage.mkdirs(outDir);
    List<String> chartPaths = new ArrayList<>();
    ReportHtml.Figure frontier = comparison == null
        ? figure(storage, outDir, chartPaths, FRONTIER_PNG, charts.rewardVsKl(gen), "Reward vs KL frontier",
            "Mean ground-truth reward of each run's checkpoints against their sampled KL from π_SFT, with "
                + ReportFormat.percent(gen.confidence()) + " confidence intervals; π_SFT sits at KL 0. "
                + "Lines join a run's checkpoints in step order. Up and to the left is better.")
        : figure(storage, outDir, chartPaths, FRONTIER_PNG, new ReportCharts(seriesOf(comparison))
            .frontier(comparison), "Reward vs KL frontier: DPO, PPO and best-of-n",
            "Mean ground-truth reward against KL from π_SFT per continuation, with "
                + ReportFormat.percent(gen.confidence()) + " confidence intervals (error bars: reward; thin "
                + "horizontal bars: the sampled KL). DPO (circles) and PPO (squares) lines join a run's checkpoints "
                + "in step order; best-of-n (triangles, dashed) sits at the analytic KL log n − (n−1)/n, which is "
                + "not measured. Up and to the left is better.");
    List<ReportHtml.Figure> training = new ArrayList<>();
    addIfPresent(training, figure(storage, outDir, chartPaths, LOSS_PNG, charts.loss(runs), "DPO loss",
        "Training loss (solid) and eval loss (dashed) by step; log 2 is the loss while the policy equals the "
            + "reference."));
    addIfPresent(training, figure(storage, outDir, chartPaths, ACCURACIES_PNG,
        charts.evalMetric(runs, "eval/rewards/accuracies", "Eval preference accuracy", "accuracy", 0.5, "chance"),
        "Eval preference accuracy",
        "Share of held-out pairs whose chosen response gets the higher implicit reward; 0.5 is chance."));
    addIfPresent(training, figure(storage, outDir, chartPaths, MARGINS_PNG,
        charts.evalMetric(runs, "eval/rewards/margins", "Eval reward margin", "margin (chosen − rejected)", 0,
            null),
        "Eval reward margin",
        "Mean implicit reward β·log(π/π_ref) of chosen minus rejected responses on the held-out pairs."));

    if (!ppoRuns.isEmpty()) {
      addIfPresent(training, figure(storage, outDir, chartPaths, PPO_SCORES_PNG,
          charts.evalMetric(ppoRuns, "objective/scores", "PPO rollout score", "mean score of the rollouts", 0, null),
          "PPO rollout score",
          "The reward PPO optimised (reward model or oracle) on its rollouts, by update (objective/scores)."));
      addIfPresent(training, figure(storage, outDir, chartPaths, PPO_KL_PNG,
          charts.evalMetric(ppoRuns, "objective/kl", "PPO KL from π_SFT", "KL per rollout, nats", 0, null),
          "PPO KL from π_SFT",
          "The KL of PPO's rollouts from π_SFT by update (objective/kl, summed over response tokens)."));
    }

    String metricsPath = Storage.join(outDir, METRICS_JSON);
    Map<String, Object> numbers = headlineNumbers(runs, gen, evalData, evalSplit);
    if (comparison != null) {
      numbers.put("frontier", frontierNumbers(comparison, ppoRuns));
      storage.writeString(Storage.join(outDir, FRONTIER_JSON), comparison.toJson() + "\n");
    }
    storage.writeString(metricsPath, json(numbers));
    String generationPath = Storage.join(outDir, GENERATION_JSON);
    storage.writeString(generationPath, gen.toJson() + "\n");
    String htmlPath = Storage.join(outDir, REPORT_HTML);
    storage.writeString(htmlPath, ReportHtml.render(gen, runs, frontier, training, evalData, evalSplit, comparison));
    return new Written(htmlPath, metricsPath, generationPath, chartPaths);
  }

  /** The content of metrics.json: sampling, SFT, every checkpoint, the headline, and the runs' last metrics. */
  static Map<String, Object> headlineNumbers(List<TrainingRun> runs, GenerationEval gen, String evalData,
      Map<String, EvalSplitMetrics> evalSplit) {
    Map<String, Object> root = new LinkedHashMap<>();
    root.put("reward", gen.reward());
    root.put("confidence", gen.confidence());
    GenerationEval.Sampling s = gen.sampling();
    Map<String, Object> sampling = new LinkedHashMap<>();
    sampling.put("prompts", s.prompts());
    sampling.put("samples_per_prompt", s.samplesPerPrompt());
    sampling.put("max_new_tokens", s.maxNewTokens());
    sampling.put("temperature", s.temperature());
    sampling.put("top_k", s.topK());
    sampling.put("top_p", s.topP());
    sampling.put("seed", s.seed());
    root.put("sampling", sampling);
    Map<String, Object> sft = new LinkedHashMap<>();
    interval(sft, "mean_reward", gen.sftReward());
    root.put("sft", sft);
    List<Object> policies = new ArrayList<>();
    gen.policies().forEach(p -> policies.add(policy(p)));
    root.put("policies", policies);
    gen.headline().ifPresent(p -> root.put("headline", policy(p)));
    List<Object> training = new ArrayList<>();
    for (TrainingRun r : runs) {
      Map<String, Object> run = new LinkedHashMap<>();
      run.put("label", r.label());
      run.put("beta", r.beta());
      run.put("last_step", r.metrics().lastStep());
      for (String key : TRAINING_KEYS) {
        OptionalDouble v = r.metrics().last(key);
        if (v.isPresent()) {
          run.put(key, v.getAsDouble());
        }
      }
      EvalSplitMetrics split = evalSplit.get(r.label());
      if (split != null) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("data", evalData);
        m.putAll(split.toMap());
        run.put("eval_split", m);
      }
      training.add(run);
    }
    root.put("training", training);
    return root;
  }

  /** Colours for the frontier chart: one per series, DPO first. */
  private static List<String> seriesOf(Frontier f) {
    List<String> series = new ArrayList<>();
    f.points().forEach(p -> {
      if (!series.contains(p.series())) {
        series.add(p.series());
      }
    });
    return series;
  }

  /** metrics.json's {@code frontier}: the verdict, every point, and each PPO run's last training metrics. */
  static Map<String, Object> frontierNumbers(Frontier f, List<TrainingRun> ppoRuns) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("outcome", f.verdict().overall().name().toLowerCase(java.util.Locale.ROOT));
    m.put("verdict", f.verdict().text());
    List<Object> points = new ArrayList<>();
    for (FrontierPoint p : f.points()) {
      Map<String, Object> q = new LinkedHashMap<>();
      q.put("method", p.method());
      q.put("series", p.series());
      q.put("coefficient", p.coefficient());
      q.put("step", p.step());
      q.put("last", p.last());
      interval(q, "mean_reward", p.reward());
      if (p.improvement() != null) {
        interval(q, "reward_improvement", p.improvement());
      }
      q.put("kl_per_continuation", p.kl());
      q.put("kl_per_continuation_ci_low", p.klLow());
      q.put("kl_per_continuation_ci_high", p.klHigh());
      q.put("kl", p.klAnalytic() ? "analytic: log n - (n-1)/n (not measured)" : "sampled");
      points.add(q);
    }
    m.put("points", points);
    List<Object> comparisons = new ArrayList<>();
    for (FrontierVerdict.Comparison c : f.verdict().comparisons()) {
      Map<String, Object> q = new LinkedHashMap<>();
      q.put("ppo", c.ppo().name());
      q.put("ppo_kl", c.ppo().kl());
      q.put("dpo", c.dpo() == null ? null : c.dpo().name());
      if (c.dpo() != null) {
        q.put("dpo_kl", c.dpo().kl());
        interval(q, "dpo_minus_ppo", c.difference());
        q.put("paired", c.paired());
      }
      q.put("outcome", c.outcome().name().toLowerCase(java.util.Locale.ROOT));
      comparisons.add(q);
    }
    m.put("comparisons", comparisons);
    if (f.bestOfN() != null) {
      m.put("best_of_n_selector", f.bestOfN().selector());
      m.put("best_of_n_selector_kind", f.bestOfN().selectorKind());
      m.put("best_of_n_samples_per_prompt", f.bestOfN().samplesPerPrompt());
    }
    List<Object> ppo = new ArrayList<>();
    for (TrainingRun r : ppoRuns) {
      Map<String, Object> run = new LinkedHashMap<>();
      run.put("label", r.label());
      run.put("kl_coef", r.beta());
      run.put("last_step", r.metrics().lastStep());
      for (String key : PPO_KEYS) {
        OptionalDouble v = r.metrics().last(key);
        if (v.isPresent()) {
          run.put(key, v.getAsDouble());
        }
      }
      ppo.add(run);
    }
    m.put("ppo_training", ppo);
    return m;
  }

  private static Map<String, Object> policy(PolicyEval p) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("label", p.label());
    m.put("beta", p.beta());
    m.put("step", p.step());
    interval(m, "mean_reward", p.reward());
    interval(m, "reward_improvement", p.improvement());
    m.put("win_rate", p.winRate().rate());
    m.put("win_rate_ci_low", p.winRate().low());
    m.put("win_rate_ci_high", p.winRate().high());
    m.put("wins", p.winRate().wins());
    m.put("ties", p.winRate().ties());
    m.put("losses", p.winRate().losses());
    m.put("kl_per_token", p.kl().perToken());
    interval(m, "kl_per_continuation", p.kl().perSequence());
    m.put("kl_tokens", p.kl().tokens());
    Verdict v = p.verdict();
    m.put("outcome", v.outcome().name().toLowerCase(java.util.Locale.ROOT));
    m.put("verdict", v.text());
    return m;
  }

  private static void interval(Map<String, Object> m, String name, MeanWithInterval x) {
    m.put(name, x.mean());
    m.put(name + "_ci_low", x.low());
    m.put(name + "_ci_high", x.high());
    m.put(name + "_n", x.n());
  }

  private static ReportHtml.Figure figure(Storage storage, String outDir, List<String> written, String file,
      XYChart chart, String title, String caption) {
    if (chart == null) {
      return null;
    }
    byte[] png = ReportCharts.png(chart);
    String path = Storage.join(outDir, file);
    storage.writeBytes(path, png);
    written.add(path);
    return new ReportHtml.Figure(file, title, caption, png);
  }

  private static void addIfPresent(List<ReportHtml.Figure> figures, ReportHtml.Figure f) {
    if (f != null) {
      figures.add(f);
    }
  }

  private static String json(Object value) {
    try {
      return Json.MAPPER.writeValueAsString(value) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
