package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.eval.EvaluationReport;
import io.sparkdpo.eval.GenerationEval;
import io.sparkdpo.eval.PolicyEval;
import io.sparkdpo.io.Storage;
import io.sparkdpo.inference.EvaluateJob;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code spark-dpo evaluate}: DPO (and PPO) policies against pi_SFT by an independent reward, and the report; with PPO
 * runs or best-of-n, the RLHF-vs-DPO frontier and its verdict.
 */
@Command(name = "evaluate", mixinStandardHelpOptions = true,
    description = {"Sample continuations of held-out prompts on Spark executors from each DPO run's policy",
        "(RUN/model) and from pi_SFT, score them with evaluate.reward, and write OUTPUT/metrics.json (mean",
        "reward with confidence intervals, reward difference, win rate, sampled KL(pi || pi_SFT), and each",
        "run's eval-split loss, accuracies and margins), report.html and PNG charts. The same runs, prompts",
        "and settings again: nothing to do. With PPO run folders (spark-dpo ppo) or --best-of-n, the report puts",
        "DPO, PPO and best-of-n on one reward-vs-KL frontier with a computed verdict (frontier.json)."})
public final class EvaluateCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--run", required = true, arity = "1..*", paramLabel = "DIR",
      description = "DPO run folders (train's OUTPUT: model/, metrics.jsonl, run.json with beta) and PPO run folders "
          + "(ppo's OUTPUT, run.json with kl_coef).")
  List<String> runs;

  @Option(names = "--best-of-n", paramLabel = "DIR",
      description = "A best-of-n folder (best_of_n.json, on the same prompts) to put on the frontier.")
  String bestOfN;

  @Option(names = "--sft-model", paramLabel = "PATH",
      description = "pi_SFT (default: the runs' starting model, model.path in their run.json).")
  String sftModel;

  @Option(names = "--data", paramLabel = "DIR",
      description = "A referenced folder (pi_SFT's log-probs): measure each policy's loss, accuracies and margins on "
          + "its eval split.")
  String data;

  @Option(names = "--prompts", required = true, arity = "1..*", paramLabel = "PATH",
      description = "Held-out prompts: generate's eval_prompts.jsonl, or text files or folders to cut them from.")
  List<String> prompts;

  @Option(names = "--output", required = true, paramLabel = "DIR", description = "The report folder to write.")
  String output;

  @Option(names = "--num-prompts", paramLabel = "N", description = "Sets evaluate.num_prompts.")
  Integer numPrompts;

  @Option(names = "--samples-per-prompt", paramLabel = "K", description = "Sets evaluate.samples_per_prompt.")
  Integer samplesPerPrompt;

  @Option(names = "--seed", paramLabel = "S", description = "Sets evaluate.seed.")
  Long seed;

  @Override
  public Integer call() {
    List<String> o = new ArrayList<>();
    StageOptions.add(o, "evaluate.num_prompts", numPrompts);
    StageOptions.add(o, "evaluate.samples_per_prompt", samplesPerPrompt);
    StageOptions.add(o, "evaluate.seed", seed);
    JobConfig cfg = job.load(o);
    EvaluateJob.Result r = new EvaluateJob(SparkSessions.create(cfg, "evaluate"), cfg).run(runs, sftModel, data,
        prompts, bestOfN, output);
    PrintWriter w = spec.commandLine().getOut();
    if (r.upToDate()) {
      w.printf("evaluate: %s is up to date (same models, prompts, metrics and settings); nothing to do%n",
          r.outputDir());
    } else {
      w.printf(Locale.ROOT, "evaluate: %d run(s) against %s in %.1f s%n", r.runs().size(), r.sftModel(), r.seconds());
    }
    printResult(w, r.generation());
    if (r.frontier() != null) {
      w.printf("frontier: %s%n", r.frontier().verdict().text());
    }
    w.printf("report: %s; numbers: %s%n", Storage.join(r.outputDir(), EvaluationReport.REPORT_HTML),
        Storage.join(r.outputDir(), EvaluationReport.METRICS_JSON));
    w.flush();
    return 0;
  }

  /** pi_SFT's mean reward and each run's final policy against it, one line each. */
  static void printResult(PrintWriter w, GenerationEval gen) {
    w.printf(Locale.ROOT, "pi_SFT: mean %s %.4f [%.4f, %.4f] over %d prompts%n", gen.reward(), gen.sftReward().mean(),
        gen.sftReward().low(), gen.sftReward().high(), gen.sftReward().n());
    for (PolicyEval e : gen.finalCheckpoints()) {
      w.printf(Locale.ROOT, "%s: mean %.4f; improvement %+.4f [%+.4f, %+.4f] (%d%% CI); win rate %.3f [%.3f, %.3f]; "
              + "KL %.3f nats per continuation (%.4f per token)%n", e.label(), e.reward().mean(),
          e.improvement().mean(), e.improvement().low(), e.improvement().high(), Math.round(gen.confidence() * 100),
          e.winRate().rate(), e.winRate().low(), e.winRate().high(), e.kl().perSequence().mean(), e.kl().perToken());
    }
  }
}
