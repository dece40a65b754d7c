package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.distributed.TrainingStage;
import io.sparkdpo.train.SessionSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code spark-dpo train}: DPO on prepared (or referenced) preference pairs. */
@Command(name = "train", mixinStandardHelpOptions = true,
    description = {"Direct Preference Optimization of model.path on a prepared folder (spark-dpo prepare) or a",
        "referenced one (reference log-probs precomputed). Runs W replicas in a Spark barrier stage (one per",
        "executor; W = 1 runs one task, in the driver JVM on a local master), checkpoints to",
        "OUTPUT/checkpoints, logs OUTPUT/metrics.jsonl and writes the final model to OUTPUT/model (with",
        "--lora also the adapter to OUTPUT/adapter, OUTPUT/model being the base with it merged).",
        "Running it again on the same OUTPUT resumes from the newest valid checkpoint."})
public final class TrainCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--data", required = true, paramLabel = "DIR", description = "Prepared or referenced folder.")
  String data;

  @Option(names = "--model", paramLabel = "PATH",
      description = "Starting policy and reference (sets model.path): builtin:tiny or a model folder, e.g. the "
          + "output of sft.")
  String model;

  @Option(names = "--lora", description = "Train LoRA adapters on the frozen base (sets train.peft.type=lora; "
      + "r, alpha, target_modules... under train.peft).")
  boolean lora;

  @Option(names = "--adapter", paramLabel = "DIR", description = "A PEFT adapter folder trained on the model to go on "
      + "training (sets model.adapter; needs LoRA).")
  String adapter;

  @Option(names = "--output", paramLabel = "DIR", description = "Run folder (sets train.output_dir).")
  String output;

  @Option(names = "--workers", paramLabel = "W", description = "Replicas, one per executor (sets train.workers).")
  Integer workers;

  @Option(names = "--reference-mode", paramLabel = "MODE",
      description = "in_loop | precomputed (sets train.reference_mode).")
  String referenceMode;

  @Option(names = "--max-steps", paramLabel = "N", description = "Stop after N optimizer steps (sets train.max_steps).")
  Long maxSteps;

  @Override
  public Integer call() {
    List<String> o = new ArrayList<>();
    StageOptions.add(o, "model.path", model);
    StageOptions.add(o, "model.adapter", adapter);
    StageOptions.add(o, "train.peft.type", lora ? "lora" : null);
    StageOptions.add(o, "train.output_dir", output);
    StageOptions.add(o, "train.workers", workers);
    StageOptions.add(o, "train.reference_mode", referenceMode);
    StageOptions.add(o, "train.max_steps", maxSteps);
    JobConfig cfg = job.load(o);
    TrainingStage.Result r = new TrainingStage(SparkSessions.create(cfg, "train"), cfg, SessionSpec.Stage.DPO)
        .run(TrainingStage.Inputs.prepared(data));
    StageOptions.report(spec.commandLine().getOut(), "train", r);
    return 0;
  }
}
