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
 */
public record PipelineSettings(
    String outputDir,
    List<String> text,
    List<String> evalText,
    List<Double> betas,
    List<String> stages,
    String exportDtype,
    PeftSettings peft) implements Validated {

  /** Every stage, in the order the pipeline runs them. */
  public static final List<String> STAGES = List.of("sft", "generate", "prepare", "reference", "train", "evaluate",
      "export");

  public PipelineSettings {
    text = text == null ? List.of() : List.copyOf(text);
    evalText = evalText == null ? List.of() : List.copyOf(evalText);
    betas = betas == null ? List.of() : List.copyOf(betas);
    stages = stages == null ? List.of() : List.copyOf(stages);
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
    if (peft != null) {
      peft.validate(prefix + ".peft", v);
    }
  }
}
