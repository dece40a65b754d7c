package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.inference.ScoreJob;
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

/** {@code spark-dpo score}: a reward model (or a reward function, as an oracle) scores generated samples. */
@Command(name = "score", mixinStandardHelpOptions = true,
    description = {"Score generated samples on Spark executors (one model per executor JVM, batched) with a reward",
        "model folder (spark-dpo reward's RUN/model; texts tokenised as its prepared training data: --prepared) or,",
        "without --model, with a reward function labelled as an oracle (--reward, else evaluate.reward). Input:",
        "generate's samples/ (Parquet) or JSON lines with prompt and continuation (or completion). Writes",
        "OUTPUT/scores/ (Parquet: the input's columns plus score), with --relabel OUTPUT/pairs.jsonl (TRL rows:",
        "per prompt best = chosen, worst = rejected, ties dropped) for prepare --format trl, and",
        "OUTPUT/manifest.json. The same inputs again: nothing to do."})
public final class ScoreCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--model", paramLabel = "RM_DIR", description = "Reward model folder (sets score.model).")
  String model;

  @Option(names = "--reward", paramLabel = "SPEC",
      description = "Without --model: the reward function to score with, as an oracle (sets score.reward).")
  String reward;

  @Option(names = "--input", paramLabel = "PATH", description = "Samples to score (sets score.input).")
  String input;

  @Option(names = "--output", paramLabel = "DIR", description = "The folder to write (sets score.output_dir).")
  String output;

  @Option(names = "--prepared", paramLabel = "DIR",
      description = "The prepared folder the reward model trained on: tokenise as it did (sets score.prepared).")
  String prepared;

  @Option(names = "--relabel", description = "Also write pairs.jsonl from the scores (sets score.relabel).")
  boolean relabel;

  @Override
  public Integer call() {
    List<String> o = new ArrayList<>();
    StageOptions.add(o, "score.model", model);
    StageOptions.add(o, "score.reward", reward);
    StageOptions.add(o, "score.input", input);
    StageOptions.add(o, "score.output_dir", output);
    StageOptions.add(o, "score.prepared", prepared);
    if (relabel) {
      o.add("score.relabel=true");
    }
    JobConfig cfg = job.load(o);
    ScoreJob.Result r = new ScoreJob(SparkSessions.create(cfg, "score"), cfg).run();
    PrintWriter w = spec.commandLine().getOut();
    if (r.upToDate()) {
      w.printf("score: %s is up to date (same input, selector and settings); nothing to do%n", r.outputDir());
    } else {
      w.printf(Locale.ROOT, "score: %d rows scored by %s (%s) in %.1f s; wrote %s/%s%n", r.rows(), r.selector(),
          r.selectorKind(), r.manifest().path("seconds").asDouble(), r.outputDir(), ScoreJob.SCORES);
      if (cfg.score().relabel()) {
        var c = r.manifest().path("counts");
        w.printf("pairs %d; dropped: %d ties, %d identical texts, %d without two non-empty continuations; wrote "
            + "%s/%s%n", r.pairs(), c.path("dropped_ties").asLong(), c.path("dropped_identical_texts").asLong(),
            c.path("dropped_empty").asLong(), r.outputDir(), ScoreJob.PAIRS);
      }
    }
    w.flush();
    return 0;
  }
}
