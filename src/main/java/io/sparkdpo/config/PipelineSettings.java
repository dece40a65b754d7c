package io.sparkdpo.config;

import java.util.List;
import java.util.Set;

/**
 * Settings of {@code spark-dpo pipeline}, which runs the controlled-sentiment experiment end to end in one Spark
 * session: SFT on {@code text} (with {@code evalText} held out), {@code generate} (training prompts from
 * {@code text}, evaluation prompts from {@code evalText}), {@code prepare}, {@code reference}, one DPO run per value
 * of {@code betas}, {@code evaluate} and the export of the best run as {@code exportDtype}. Every stage writes a
 * folder under {@code outputDir}; {@code stages} names the ones to run (the others must have run before). With
 * {@code peft} (null: full fine-tuning) the sft and train stages train LoRA adapters: sft writes an adapter on
 * {@code model.path}, and reference and DPO run on base + that adapter (DPO continues it, the reference keeps it).
 *
 * <p>The RLHF path DPO replaces, for the comparison on one frontier (stages not in the default list): {@code reward}
 * (a Bradley-Terry reward model on the prepared pairs, from pi_SFT), {@code ppo} (one run per value of
 * {@code klCoefs}, from pi_SFT on the training prompts), {@code best-of-n} (each n of {@code bestOfN} from one pool of
 * max(n) samples per held-out prompt). {@code rlhfReward} says what PPO optimises and best-of-n selects by: the
 * trained reward model ({@code reward_model}) or the ground-truth reward itself ({@code oracle}).
 */
public record PipelineSettings(
    String outputDir,
    List<String> text,
    List<String> evalText,
    List<Double> betas,
    List<String> stages,
    String exportDtype,
    PeftSettings peft,
    List<Double> klCoefs,
    List<Integer> bestOfN,
    String rlhfReward) implements Validated {

  /** Every stage, in the order the pipeline runs them. */
  public static final List<String> STAGES = List.of("sft", "generate", "prepare", "reference", "reward", "train",
      "ppo", "best-of-n", "evaluate", "export");
  /** The stages of {@code pipeline.stages}' default: the DPO experiment. */
  public static final List<String> DPO_STAGES = List.of("sft", "generate", "prepare", "reference", "train",
      "evaluate", "export");
  public static final String REWARD_MODEL = "reward_model";
  public static final String ORACLE = "oracle";

  public PipelineSettings {
    text = text == null ? List.of() : List.copyOf(text);
    evalText = evalText == null ? List.of() : List.copyOf(evalText);
    betas = betas == null ? List.of() : List.copyOf(betas);
    stages = stages == null ? List.of() : List.copyOf(stages);
    klCoefs = klCoefs == null ? List.of() : List.copyOf(klCoefs);
    bestOfN = bestOfN == null ? List.of() : List.copyOf(bestOfN);
  }

  /** True when PPO and best-of-n optimise and select by the ground truth rather than a trained reward model. */
  public boolean oracle() {
    return ORACLE.equals(rlhfReward);
  }

  public boolean runs(String stage) {
    return stages.contains(stage);
  }

  @Override
  public void validate(String prefix, Violations v) {
    v.notBlank(prefix + ".output_dir", outputDir);
    v.require(!text.isEmpty(), prefix + ".text", "must name at least one text file or folder", text);
    v.require(!evalText.isEmpty(), prefix + ".eval_text", "must name held-out text (evaluation prompts)", evalText);
    v.require(!betas.isEmpty() && betas.stream().allMatch(b -> b != null && b > 0 && Double.isFinite(b))
        && Set.copyOf(betas).size() == betas.size(), prefix + ".betas", "must be distinct numbers > 0", betas);
    v.require(!stages.isEmpty() && STAGES.containsAll(stages), prefix + ".stages", "must be a non-empty subset of "
        + STAGES, stages);
    v.oneOf(prefix + ".export_dtype", exportDtype, "float32", "bfloat16");
    v.require(klCoefs.stream().allMatch(k -> k != null && k >= 0 && Double.isFinite(k))
        && Set.copyOf(klCoefs).size() == klCoefs.size() && (!klCoefs.isEmpty() || !runs("ppo")),
        prefix + ".kl_coefs", "must be distinct numbers >= 0, at least one when stages include ppo", klCoefs);
    v.require(bestOfN.stream().allMatch(n -> n != null && n >= 1) && Set.copyOf(bestOfN).size() == bestOfN.size()
        && (!bestOfN.isEmpty() || !runs("best-of-n")), prefix + ".best_of_n",
        "must be distinct integers >= 1, at least one when stages include best-of-n", bestOfN);
    v.oneOf(prefix + ".rlhf_reward", rlhfReward, REWARD_MODEL, ORACLE);
    if (peft != null) {
      peft.validate(prefix + ".peft", v);
    }
  }
}
