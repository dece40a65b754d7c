package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.distributed.PpoStage;
import io.sparkdpo.distributed.TrainingStage;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code spark-dpo ppo}: RLHF's policy step, PPO with a KL penalty against pi_SFT. */
@Command(name = "ppo", mixinStandardHelpOptions = true,
    description = {"Optimise max E[r(x,y)] - kl_coef KL(pi || pi_SFT) with PPO (TRL 0.22.2's PPOTrainer): rollouts",
        "from the current policy on the prompts generate wrote, a per-token KL penalty against model.path (pi_SFT,",
        "also the starting policy), a value head, GAE and the clipped surrogate over num_ppo_epochs per batch, on",
        "ppo.workers data-parallel replicas (barrier stage, ring all-reduce, checkpoints, exact resume). The reward:",
        "a reward model folder (spark-dpo reward's RUN/model, same tokenizer as the policy), or without one the",
        "ground-truth reward on the decoded text as an oracle (ppo.reward, default evaluate.reward). Writes",
        "OUTPUT/model (the policy, HF layout), OUTPUT/value_head.safetensors, checkpoint-N/ and metrics.jsonl with",
        "TRL's names (objective/kl, objective/scores, objective/rlhf_reward, loss/policy_avg, ...)."})
public final class PpoCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--prompts", arity = "1..*", paramLabel = "FILE",
      description = "prompts.jsonl files written by spark-dpo generate (sets ppo.prompts).")
  List<String> prompts;

  @Option(names = "--model", paramLabel = "PATH", description = "pi_SFT: starting policy and reference (sets "
      + "model.path).")
  String model;

  @Option(names = "--reward-model", paramLabel = "DIR",
      description = "Reward model folder (sets ppo.reward_model); without it the oracle reward is used.")
  String rewardModel;

  @Option(names = "--reward", paramLabel = "NAME",
      description = "Oracle ground-truth reward, e.g. afinn (sets ppo.reward; used without --reward-model).")
  String reward;

  @Option(names = "--kl-coef", paramLabel = "BETA", description = "KL penalty coefficient (sets ppo.kl_coef).")
  Double klCoef;

  @Option(names = "--output", paramLabel = "DIR", description = "Run folder (sets ppo.output_dir).")
  String output;

  @Option(names = "--workers", paramLabel = "W", description = "Replicas, one per executor (sets ppo.workers).")
  Integer workers;

  @Option(names = "--max-steps", paramLabel = "N",
      description = "Stop after N updates (rollout batches) (sets ppo.max_steps).")
  Long maxSteps;

  @Override
  public Integer call() {
    List<String> o = new ArrayList<>();
    if (prompts != null) {
      o.add("ppo.prompts=" + StageOptions.yamlList(prompts));
    }
    StageOptions.add(o, "model.path", model);
    StageOptions.add(o, "ppo.reward_model", rewardModel);
    StageOptions.add(o, "ppo.reward", reward);
    StageOptions.add(o, "ppo.kl_coef", klCoef);
    StageOptions.add(o, "ppo.output_dir", output);
    StageOptions.add(o, "ppo.workers", workers);
    StageOptions.add(o, "ppo.max_steps", maxSteps);
    JobConfig cfg = job.load(o);
    TrainingStage.Result r = new PpoStage(SparkSessions.create(cfg, "ppo"), cfg).run();
    StageOptions.report(spec.commandLine().getOut(), "ppo", r);
    return 0;
  }
}
