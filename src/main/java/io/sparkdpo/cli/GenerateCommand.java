package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.inference.GenerateJob;
import io.sparkdpo.inference.GenerateManifest;
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

/** {@code spark-dpo generate}: preference pairs sampled from pi_SFT on executors and labelled by a reward. */
@Command(name = "generate", mixinStandardHelpOptions = true,
    description = {"Cut short prompts from text, sample several continuations per prompt from the model on",
        "Spark executors (seeded per prompt: the same pairs whatever the partitioning), score them with",
        "evaluate.reward, and write the best as chosen and the worst as rejected to DIR/pairs.jsonl (TRL",
        "rows for prepare --format trl), with the prompts, optional held-out eval prompts, the scored",
        "samples (Parquet) and DIR/manifest.json. The same inputs again: nothing to do."})
public final class GenerateCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--model", paramLabel = "PATH", description = "pi_SFT: builtin:tiny or a model folder (sets generate.model).")
  String model;

  @Option(names = "--prompts", arity = "1..*", paramLabel = "PATH",
      description = "Text files or folders to cut training prompts from (sets generate.prompts).")
  List<String> prompts;

  @Option(names = "--eval-prompts", arity = "1..*", paramLabel = "PATH",
      description = "Held-out text for evaluation prompts (sets generate.eval_prompts).")
  List<String> evalPrompts;

  @Option(names = "--output", required = true, paramLabel = "DIR", description = "The folder to write.")
  String output;

  @Option(names = "--num-prompts", paramLabel = "N", description = "Training prompts (sets generate.num_prompts).")
  Integer numPrompts;

  @Option(names = "--samples-per-prompt", paramLabel = "K", description = "Sets generate.samples_per_prompt.")
  Integer samplesPerPrompt;

  @Option(names = "--seed", paramLabel = "S", description = "Sets generate.seed.")
  Long seed;

  @Override
  public Integer call() {
    List<String> o = new ArrayList<>();
    if (model != null) {
      o.add("generate.model=" + model);
    }
    if (prompts != null) {
      o.add("generate.prompts=" + StageOptions.yamlList(prompts));
    }
    if (evalPrompts != null) {
      o.add("generate.eval_prompts=" + StageOptions.yamlList(evalPrompts));
    }
    if (numPrompts != null) {
      o.add("generate.num_prompts=" + numPrompts);
    }
    if (samplesPerPrompt != null) {
      o.add("generate.samples_per_prompt=" + samplesPerPrompt);
    }
    if (seed != null) {
      o.add("generate.seed=" + seed);
    }
    JobConfig cfg = job.load(o);
    GenerateJob.Result r = new GenerateJob(SparkSessions.create(cfg, "generate"), cfg).run(output);
    GenerateManifest m = r.manifest();
    GenerateManifest.Counts c = m.counts();
    PrintWriter w = spec.commandLine().getOut();
    if (r.upToDate()) {
      w.printf("generate: %s is up to date (same model, prompts, reward and settings); nothing to do%n",
          r.outputDir());
    } else {
      w.printf(Locale.ROOT, "generate: %d prompts x %d samples from %s in %.1f s; reward %s%n", c.prompts(),
          c.samples() / Math.max(1, c.prompts()), m.model().path(), m.seconds(), m.reward().name());
      w.printf("pairs %d; dropped: %d ties, %d identical texts, %d without two non-empty continuations%n", c.pairs(),
          c.droppedTies(), c.droppedIdenticalTexts(), c.droppedEmpty());
      w.printf("model loaded %d time(s) by %d task(s) in %d executor JVM(s); wrote %s/%s%s%n",
          m.executors().modelLoads(), m.executors().tasks(), m.executors().jvms(), r.outputDir(), GenerateJob.PAIRS,
          c.evalPrompts() > 0 ? " and " + c.evalPrompts() + " eval prompts" : "");
    }
    w.flush();
    return 0;
  }
}
