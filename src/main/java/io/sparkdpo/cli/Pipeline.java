package io.sparkdpo.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.config.PipelineSettings;
import io.sparkdpo.data.BuiltinTemplate;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.distributed.TrainingStage;
import io.sparkdpo.eval.EvaluationReport;
import io.sparkdpo.eval.GenerationEval;
import io.sparkdpo.eval.PolicyEval;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.ModelExport;
import io.sparkdpo.distributed.PpoStage;
import io.sparkdpo.inference.BestOfNJob;
import io.sparkdpo.inference.EvaluateJob;
import io.sparkdpo.inference.GenerateJob;
import io.sparkdpo.inference.ReferenceJob;
import io.sparkdpo.train.SessionSpec;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.apache.spark.sql.SparkSession;

/**
 * {@code spark-dpo pipeline}: the controlled-sentiment experiment, every stage through its Java API in one Spark
 * session, each stage's folder under {@code pipeline.output_dir}:
 * {@code sft/} (pi_SFT on plain text) -> {@code generated/} (pairs labelled by the reward, held-out prompts) ->
 * {@code prepared/} -> {@code referenced/} -> {@code dpo-beta-B/} per beta -> {@code evaluation/} -> {@code export/}
 * (the best beta's policy). A stage whose folder already holds its output for the same inputs and settings (its
 * manifest's fingerprint, or run.json and the final checkpoint for training) is skipped and says so. Writes
 * {@code pipeline.json}: every stage's status, folder and seconds. With {@code pipeline.peft} the sft and train stages
 * train LoRA adapters: sft writes {@code sft/adapter} on {@code model.path} (and {@code sft/model}, the base with it
 * merged, for generate and prepare); reference, train and evaluate's pi_SFT are base + that adapter.
 *
 * <p>The RLHF path for the comparison (stages {@code reward}, {@code ppo}, {@code best-of-n}; conf/rlhf-vs-dpo.yaml):
 * {@code reward/} (a reward model on the prepared pairs, from pi_SFT) -> {@code ppo-kl-K/} per
 * {@code pipeline.kl_coefs} (PPO from pi_SFT on generate's training prompts, against the reward model or, with
 * {@code pipeline.rlhf_reward: oracle}, the ground truth) -> {@code best-of-n/} (the held-out prompts, selected by the
 * same reward); evaluate then puts DPO, PPO and best-of-n on one frontier with a verdict. The export stays the best
 * DPO run.
 */
final class Pipeline {
  static final String SFT = "sft";
  static final String GENERATED = "generated";
  static final String PREPARED = "prepared";
  static final String REFERENCED = "referenced";
  static final String EVALUATION = "evaluation";
  static final String EXPORT = "export";
  static final String REWARD = "reward";
  static final String BEST_OF_N = "best-of-n";
  static final String SUMMARY = "pipeline.json";

  /** One stage as it went: {@code skipped} when its output was up to date. */
  record StageRun(String stage, String dir, boolean skipped, double seconds) {}

  /** The whole run: stages in order, the evaluation, and where the best policy was exported (null if not run). */
  record Outcome(List<StageRun> stages, GenerationEval evaluation, String exportDir, double seconds) {}

  private final SparkSession spark;
  private final Path configFile;
  private final List<String> overrides;
  private final PrintWriter out;
  private final JobConfig base;
  private final Storage storage;
  private final List<StageRun> stages = new ArrayList<>();

  Pipeline(SparkSession spark, Path configFile, List<String> overrides, PrintWriter out) {
    this.spark = spark;
    this.configFile = configFile;
    this.overrides = List.copyOf(overrides);
    this.out = out;
    this.base = config();
    this.storage = new Storage(spark.sparkContext().hadoopConfiguration());
  }

  Outcome run() {
    long start = System.nanoTime();
    PipelineSettings p = base.pipeline();
    String root = p.outputDir().replaceAll("(?<=.)/+$", "");
    String sftDir = Storage.join(root, SFT);
    String sftModel = Storage.join(sftDir, TrainingStage.MODEL);
    String generated = Storage.join(root, GENERATED);
    String prepared = Storage.join(root, PREPARED);
    String referenced = Storage.join(root, REFERENCED);
    List<String> runDirs = p.betas().stream().map(b -> Storage.join(root, "dpo-beta-" + EvaluateJob.betaText(b)))
        .toList();
    String rewardDir = Storage.join(root, REWARD);
    List<String> ppoDirs = p.klCoefs().stream().map(k -> Storage.join(root, "ppo-kl-" + EvaluateJob.betaText(k)))
        .toList();
    String bestOfNDir = Storage.join(root, BEST_OF_N);

    // With pipeline.peft: sft trains an adapter on model.path; reference and train run on base + that adapter (DPO
    // continues it, its reference keeps it); generate and prepare read sft/model, the base with it merged.
    PeftSettings peft = p.peft();
    String sftAdapter = Storage.join(sftDir, TrainingStage.ADAPTER);
    List<String> onSft = peft == null ? List.of("model.path=" + sftModel, "model.adapter=null")
        : List.of("model.adapter=" + sftAdapter);

    if (p.runs("sft")) {
      List<String> settings = new ArrayList<>(List.of("sft.output_dir=" + sftDir));
      settings.addAll(peftSettings("sft.peft", peft));
      stage("sft", sftDir, () -> new TrainingStage(spark, config(settings.toArray(String[]::new)),
          SessionSpec.Stage.SFT).replacingOtherRun().run(TrainingStage.Inputs.text(p.text(), p.evalText()))
          .upToDate());
    }
    if (p.runs("generate")) {
      JobConfig cfg = config("generate.model=" + sftModel, "generate.prompts=" + StageOptions.yamlList(p.text()),
          "generate.eval_prompts=" + StageOptions.yamlList(p.evalText()));
      stage("generate", generated, () -> new GenerateJob(spark, cfg).run(generated).upToDate());
    }
    if (p.runs("prepare")) {
      List<String> settings = new ArrayList<>(List.of("prepare.format=trl", "prepare.add_eos=false",
          "prepare.tokenizer=" + sftModel));
      if (base.prepare().template().equals("auto")) {
        settings.add("prepare.template=" + BuiltinTemplate.PLAIN.templateName());
      }
      JobConfig cfg = config(settings.toArray(String[]::new));
      stage("prepare", prepared, () -> new PrepareJob(spark, cfg, cfg.train().workers())
          .run(List.of(Storage.join(generated, GenerateJob.PAIRS)), prepared).upToDate());
    }
    if (p.runs("reference")) {
      List<String> settings = new ArrayList<>(onSft);
      settings.add("reference.model=null");
      stage("reference", referenced, () -> new ReferenceJob(spark, config(settings.toArray(String[]::new)))
          .run(prepared, referenced).upToDate());
    }
    if (p.runs("reward")) {
      // Bradley-Terry on the same pairs DPO learns from, starting from pi_SFT's decoder (as InstructGPT does).
      JobConfig cfg = config("model.path=" + sftModel, "model.adapter=null", "reward.output_dir=" + rewardDir);
      stage("reward", rewardDir, () -> new TrainingStage(spark, cfg, SessionSpec.Stage.REWARD).replacingOtherRun()
          .run(TrainingStage.Inputs.prepared(prepared)).upToDate());
    }
    if (p.runs("train")) {
      for (int i = 0; i < runDirs.size(); i++) {
        String dir = runDirs.get(i);
        List<String> settings = new ArrayList<>(onSft);
        settings.addAll(List.of("train.beta=" + p.betas().get(i), "train.output_dir=" + dir,
            "train.reference_mode=precomputed"));
        settings.addAll(peftSettings("train.peft", peft));
        JobConfig cfg = config(settings.toArray(String[]::new));
        stage("train β=" + EvaluateJob.betaText(p.betas().get(i)), dir, () -> new TrainingStage(spark, cfg,
            SessionSpec.Stage.DPO).replacingOtherRun().run(TrainingStage.Inputs.prepared(referenced)).upToDate());
      }
    }
    // PPO and best-of-n optimise / select by the reward stage's model, or by the ground truth as an oracle.
    String rewardModel = p.oracle() ? "null" : Storage.join(rewardDir, TrainingStage.MODEL);
    if (p.runs("ppo")) {
      for (int i = 0; i < ppoDirs.size(); i++) {
        String dir = ppoDirs.get(i);
        // From pi_SFT (PPO has no LoRA: with pipeline.peft, the merged sft/model), on generate's training prompts.
        JobConfig cfg = config("model.path=" + sftModel, "model.adapter=null", "ppo.output_dir=" + dir,
            "ppo.kl_coef=" + p.klCoefs().get(i), "ppo.reward_model=" + rewardModel,
            "ppo.prompts=" + StageOptions.yamlList(List.of(Storage.join(generated, GenerateJob.PROMPTS))));
        stage("ppo kl_coef=" + EvaluateJob.betaText(p.klCoefs().get(i)), dir, () -> new PpoStage(spark, cfg)
            .replacingOtherRun().run().upToDate());
      }
    }
    if (p.runs("best-of-n")) {
      // pi_SFT as evaluate samples it, on the same held-out prompts with evaluate's sampling settings; the reward
      // model reads the texts as it was trained (the prepared folder's template).
      List<String> settings = new ArrayList<>(onSft);
      settings.addAll(List.of("score.model=" + rewardModel, "score.prepared=" + prepared,
          "score.best_of_n=" + p.bestOfN()));
      JobConfig cfg = config(settings.toArray(String[]::new));
      stage("best-of-n", bestOfNDir, () -> new BestOfNJob(spark, cfg).run(
          List.of(Storage.join(generated, GenerateJob.EVAL_PROMPTS)), bestOfNDir).upToDate());
    }
    GenerationEval evaluation = null;
    String evalDir = Storage.join(root, EVALUATION);
    if (p.runs("evaluate")) {
      EvaluateJob.Result[] r = new EvaluateJob.Result[1];
      stage("evaluate", evalDir, () -> {
        // pi_SFT: sft/model, or with peft what the runs started from (base + sft adapter), as the reference was.
        // The RLHF runs join the frontier when this pipeline runs their stages (skipped ones included).
        List<String> evaluated = new ArrayList<>(runDirs);
        if (p.runs("ppo")) {
          evaluated.addAll(ppoDirs);
        }
        r[0] = new EvaluateJob(spark, config()).run(evaluated, peft == null ? sftModel : null, referenced,
            List.of(Storage.join(generated, GenerateJob.EVAL_PROMPTS)), p.runs("best-of-n") ? bestOfNDir : null,
            evalDir);
        return r[0].upToDate();
      });
      evaluation = r[0].generation();
      EvaluateCommand.printResult(out, evaluation);
      if (r[0].frontier() != null) {
        out.printf("frontier: %s%n", r[0].frontier().verdict().text());
      }
    }
    String exportDir = null;
    if (p.runs("export")) {
      GenerationEval gen = evaluation != null ? evaluation : GenerationEval.fromJson(storage.readString(
          Storage.join(evalDir, EvaluationReport.GENERATION_JSON)), evalDir);
      String best = bestRun(gen, p, runDirs);
      exportDir = Storage.join(root, EXPORT);
      String target = exportDir;
      stage("export", exportDir, () -> ModelExport.export(storage, Storage.join(best, TrainingStage.MODEL), target,
          p.exportDtype(), base.model().seed()).upToDate());
      out.printf("exported the policy of %s (best mean reward improvement) to %s%n", best, exportDir);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    writeSummary(root, seconds);
    out.printf(Locale.ROOT, "pipeline: %d stage(s) in %.1f s (%d skipped as up to date); summary in %s/%s%n",
        stages.size(), seconds, stages.stream().filter(StageRun::skipped).count(), root, SUMMARY);
    out.flush();
    return new Outcome(List.copyOf(stages), evaluation, exportDir, seconds);
  }

  /** {@code --set} overrides that make {@code section} (sft.peft or train.peft) the pipeline's peft; none when off. */
  static List<String> peftSettings(String section, PeftSettings peft) {
    if (peft == null) {
      return List.of();
    }
    return List.of(section + ".type=" + peft.type(), section + ".r=" + peft.r(), section + ".alpha=" + peft.alpha(),
        section + ".dropout=" + peft.dropout(), section + ".target_modules=" + StageOptions.yamlList(
            peft.targetModules()), section + ".modules_to_save=" + StageOptions.yamlList(peft.modulesToSave()));
  }

  /** A stage's work; returns true when it found its output up to date and did nothing. */
  @FunctionalInterface
  interface StageWork {
    boolean run();
  }

  private void stage(String name, String dir, StageWork work) {
    out.printf("pipeline: %s -> %s%n", name, dir);
    out.flush();
    long t0 = System.nanoTime();
    boolean skipped = work.run();
    double s = (System.nanoTime() - t0) / 1e9;
    stages.add(new StageRun(name, dir, skipped, s));
    if (skipped) {
      out.printf(Locale.ROOT, "pipeline: %s skipped: %s is up to date (same inputs and settings)%n", name, dir);
    } else {
      out.printf(Locale.ROOT, "pipeline: %s done in %.1f s%n", name, s);
    }
    out.flush();
  }

  /**
   * The DPO run whose final policy improved the mean reward most (the evaluation's headline when no PPO run is
   * evaluated with them; PPO policies are not exported here).
   */
  private static String bestRun(GenerationEval gen, PipelineSettings p, List<String> runDirs) {
    List<String> dpoLabels = p.betas().stream().map(b -> "β=" + EvaluateJob.betaText(b)).toList();
    Optional<PolicyEval> head = gen.finalCheckpoints().stream().filter(e -> dpoLabels.contains(e.label()))
        .max(java.util.Comparator.comparingDouble(e -> e.improvement().mean()));
    if (head.isEmpty()) {
      throw new IllegalStateException("the evaluation holds no DPO policy to export");
    }
    for (int i = 0; i < p.betas().size(); i++) {
      if (Double.compare(p.betas().get(i), head.get().beta()) == 0) {
        return runDirs.get(i);
      }
    }
    throw new IllegalStateException("the evaluation's best run (beta " + head.get().beta() + ") is not one of "
        + "pipeline.betas " + p.betas() + ": evaluate again");
  }

  private void writeSummary(String root, double seconds) {
    ObjectNode n = Json.MAPPER.createObjectNode();
    n.put("seconds", seconds);
    ArrayNode list = n.putArray("stages");
    for (StageRun s : stages) {
      list.addObject().put("stage", s.stage()).put("dir", s.dir()).put("skipped", s.skipped())
          .put("seconds", s.seconds());
    }
    storage.writeJson(Storage.join(root, SUMMARY), n);
  }

  /** The configuration with the pipeline's settings for one stage applied after the user's. */
  private JobConfig config(String... stageOverrides) {
    List<String> all = new ArrayList<>(overrides);
    all.addAll(List.of(stageOverrides));
    return ConfigLoader.load(configFile, all);
  }
}
