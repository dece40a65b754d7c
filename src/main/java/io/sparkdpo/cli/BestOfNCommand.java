package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.eval.BestOfNReport;
import io.sparkdpo.inference.BestOfNJob;
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

/** {@code spark-dpo best-of-n}: best-of-n from pi_SFT, evaluated like a policy with the ground-truth reward. */
@Command(name = "best-of-n", mixinStandardHelpOptions = true,
    description = {"Sample max(n) continuations per held-out prompt from pi_SFT (model.path) on Spark executors with",
        "evaluate's sampling settings, keep the best of the first n by the selector (a reward model folder,",
        "--reward-model, or the ground truth evaluate.reward as an oracle, labelled so) and score it with the",
        "ground truth: OUTPUT/best_of_n.json (reward with its interval, paired improvement over pi_SFT, selector",
        "score, and the analytic KL log n - (n-1)/n per n), OUTPUT/samples/ and OUTPUT/manifest.json."})
public final class BestOfNCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--model", paramLabel = "PATH", description = "pi_SFT (sets model.path).")
  String model;

  @Option(names = "--reward-model", paramLabel = "RM_DIR",
      description = "The selector: a reward model folder (sets score.model; default: the oracle).")
  String rewardModel;

  @Option(names = "--prepared", paramLabel = "DIR",
      description = "The prepared folder the reward model trained on (sets score.prepared).")
  String prepared;

  @Option(names = "--prompts", arity = "1..*", paramLabel = "PATH",
      description = "Held-out prompts: generate's eval_prompts.jsonl, or held-out text (sets score.prompts).")
  List<String> prompts;

  @Option(names = "--output", paramLabel = "DIR", description = "Sets score.best_of_n_output_dir.")
  String output;

  @Option(names = "--n", split = ",", paramLabel = "N", description = "The n to evaluate, e.g. 1,4,16 (sets "
      + "score.best_of_n).")
  List<Integer> ns;

  @Option(names = "--num-prompts", paramLabel = "N", description = "Sets evaluate.num_prompts.")
  Integer numPrompts;

  @Override
  public Integer call() {
    List<String> o = new ArrayList<>();
    StageOptions.add(o, "model.path", model);
    StageOptions.add(o, "score.model", rewardModel);
    StageOptions.add(o, "score.prepared", prepared);
    if (prompts != null) {
      o.add("score.prompts=" + StageOptions.yamlList(prompts));
    }
    StageOptions.add(o, "score.best_of_n_output_dir", output);
    if (ns != null) {
      o.add("score.best_of_n=" + ns);
    }
    StageOptions.add(o, "evaluate.num_prompts", numPrompts);
    JobConfig cfg = job.load(o);
    BestOfNJob.Result r = new BestOfNJob(SparkSessions.create(cfg, "best-of-n"), cfg).run();
    BestOfNReport b = r.report();
    PrintWriter w = spec.commandLine().getOut();
    if (r.upToDate()) {
      w.printf("best-of-n: %s is up to date (same pi_SFT, prompts, selector and settings); nothing to do%n",
          r.outputDir());
    } else {
      w.printf("best-of-n: %d prompts x %d samples; selector %s (%s); reward %s%n", b.prompts(),
          b.samplesPerPrompt(), b.selector(), b.selectorKind(), b.reward());
    }
    for (BestOfNReport.Point p : b.points()) {
      w.printf(Locale.ROOT, "  n=%-3d reward %.4f [%.4f, %.4f]  improvement %+.4f [%+.4f, %+.4f]  selector %.4f  "
          + "KL %.3f (analytic)%n", p.n(), p.rewardMean(), p.rewardLow(), p.rewardHigh(), p.improvementMean(),
          p.improvementLow(), p.improvementHigh(), p.selectorScore(), p.kl());
    }
    w.printf("wrote %s/%s%n", r.outputDir(), BestOfNReport.FILE);
    w.flush();
    return 0;
  }
}
