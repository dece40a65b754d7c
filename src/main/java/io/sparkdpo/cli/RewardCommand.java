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

/** {@code spark-dpo reward}: a Bradley-Terry reward model on prepared preference pairs. */
@Command(name = "reward", mixinStandardHelpOptions = true,
    description = {"Train a reward model on a prepared folder: model.path (pi_SFT, or a reward model to go on",
        "training) with a scalar score head on the last non-padding token, loss -log sigmoid(r_chosen - r_rejected)",
        "(+ reward.center_rewards_coefficient x mean((r_chosen + r_rejected)^2)). Runs like train (barrier stage,",
        "checkpoints, metrics with TRL's names: loss, accuracy, margin, mean_reward; resume) and writes OUTPUT/model,",
        "a Hugging Face folder transformers loads as LlamaForSequenceClassification / Qwen2ForSequenceClassification",
        "(score.weight, num_labels 1, pad_token_id)."})
public final class RewardCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--data", required = true, paramLabel = "DIR", description = "Prepared folder (spark-dpo prepare).")
  String data;

  @Option(names = "--model", paramLabel = "PATH", description = "Starting model (sets model.path).")
  String model;

  @Option(names = "--output", paramLabel = "DIR", description = "Run folder (sets reward.output_dir).")
  String output;

  @Option(names = "--workers", paramLabel = "W", description = "Replicas, one per executor (sets reward.workers).")
  Integer workers;

  @Option(names = "--max-steps", paramLabel = "N",
      description = "Stop after N optimizer steps (sets reward.max_steps).")
  Long maxSteps;

  @Override
  public Integer call() {
    List<String> o = new ArrayList<>();
    StageOptions.add(o, "model.path", model);
    StageOptions.add(o, "reward.output_dir", output);
    StageOptions.add(o, "reward.workers", workers);
    StageOptions.add(o, "reward.max_steps", maxSteps);
    JobConfig cfg = job.load(o);
    TrainingStage.Result r = new TrainingStage(SparkSessions.create(cfg, "reward"), cfg, SessionSpec.Stage.REWARD)
        .run(TrainingStage.Inputs.prepared(data));
    StageOptions.report(spec.commandLine().getOut(), "reward", r);
    return 0;
  }
}
