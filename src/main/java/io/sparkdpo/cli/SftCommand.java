package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigException;
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

/** {@code spark-dpo sft}: supervised fine-tuning on prepared pairs (prompt + chosen) or on plain text. */
@Command(name = "sft", mixinStandardHelpOptions = true,
    description = {"Supervised fine-tuning of model.path: on a prepared folder (--data; the loss on the chosen",
        "response, or on the whole sequence with sft.completion_only_loss=false), or on plain text (--text;",
        "one paragraph per line, cut into windows of sft.block_size tokens). Runs like train (barrier stage,",
        "checkpoints, metrics, resume) and writes OUTPUT/model, a Hugging Face folder with the tokenizer",
        "files, usable as --model for reference and train. With --lora also OUTPUT/adapter (PEFT), usable as",
        "--adapter (model.adapter) on the same base for reference and train."})
public final class SftCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--data", paramLabel = "DIR", description = "Prepared folder (spark-dpo prepare).")
  String data;

  @Option(names = "--text", arity = "1..*", paramLabel = "PATH",
      description = "Text files or folders, one paragraph per line (instead of --data).")
  List<String> text = new ArrayList<>();

  @Option(names = "--eval-text", arity = "1..*", paramLabel = "PATH",
      description = "Held-out text to evaluate on (with --text).")
  List<String> evalText = new ArrayList<>();

  @Option(names = "--model", paramLabel = "PATH", description = "Starting model (sets model.path).")
  String model;

  @Option(names = "--lora", description = "Train LoRA adapters on the frozen base (sets sft.peft.type=lora; "
      + "r, alpha, target_modules... under sft.peft).")
  boolean lora;

  @Option(names = "--adapter", paramLabel = "DIR", description = "A PEFT adapter folder trained on the model to go on "
      + "training (sets model.adapter; needs LoRA).")
  String adapter;

  @Option(names = "--output", paramLabel = "DIR", description = "Run folder (sets sft.output_dir).")
  String output;

  @Option(names = "--workers", paramLabel = "W", description = "Replicas, one per executor (sets sft.workers).")
  Integer workers;

  @Option(names = "--max-steps", paramLabel = "N", description = "Stop after N optimizer steps (sets sft.max_steps).")
  Long maxSteps;

  @Override
  public Integer call() {
    if ((data == null) == text.isEmpty()) {
      throw new ConfigException("sft needs exactly one of --data DIR and --text PATH...");
    }
    if (!evalText.isEmpty() && text.isEmpty()) {
      throw new ConfigException("--eval-text goes with --text (prepared folders carry their own eval split)");
    }
    List<String> o = new ArrayList<>();
    StageOptions.add(o, "model.path", model);
    StageOptions.add(o, "model.adapter", adapter);
    StageOptions.add(o, "sft.peft.type", lora ? "lora" : null);
    StageOptions.add(o, "sft.output_dir", output);
    StageOptions.add(o, "sft.workers", workers);
    StageOptions.add(o, "sft.max_steps", maxSteps);
    JobConfig cfg = job.load(o);
    TrainingStage.Inputs inputs = data != null ? TrainingStage.Inputs.prepared(data)
        : TrainingStage.Inputs.text(text, evalText);
    TrainingStage.Result r = new TrainingStage(SparkSessions.create(cfg, "sft"), cfg, SessionSpec.Stage.SFT)
        .run(inputs);
    StageOptions.report(spec.commandLine().getOut(), "sft", r);
    return 0;
  }
}
