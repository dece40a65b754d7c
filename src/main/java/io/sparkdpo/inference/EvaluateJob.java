package io.sparkdpo.inference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.EvaluateSettings;
import io.sparkdpo.config.GenerateSettings;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.RecordedSettings;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.ReferenceColumns;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.data.TokenizerFiles;
import io.sparkdpo.eval.BestOfNReport;
import io.sparkdpo.eval.EvalSplitMetrics;
import io.sparkdpo.eval.EvaluationReport;
import io.sparkdpo.eval.Frontier;
import io.sparkdpo.eval.FrontierPoint;
import io.sparkdpo.eval.GenerationEval;
import io.sparkdpo.eval.PolicyEval;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.eval.TrainingRun;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.SamplingSettings;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.PreparedData;
import io.sparkdpo.train.TrainerCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code evaluate} stage: for each DPO or PPO run folder ({@code RUN/model}, {@code RUN/metrics.jsonl},
 * {@code RUN/run.json} with its beta), continuations of held-out prompts are sampled on executors from the run's
 * policy and from pi_SFT ({@link SamplingJob}, the same seeds for both, so each policy sample has an SFT twin drawn
 * from the same random stream), scored by the ground-truth reward ({@code evaluate.reward}), and the policy's
 * sampled tokens are scored under pi_SFT for the sampled KL. {@link GenerationEval} turns that into mean rewards
 * with intervals, paired differences, win rates and KL; {@link EvaluationReport} writes {@code metrics.json},
 * {@code report.html} and the charts, next to the runs' eval-split metrics (loss, accuracies, margins: from their
 * metrics.jsonl, and measured here on a referenced folder's eval split when one is given). A manifest
 * written last makes a rerun with the same models, prompts, metrics and settings a no-op.
 *
 * <p>With PPO runs ({@code spark-dpo ppo}'s folders) or a best-of-n folder ({@code best_of_n.json}), the report is
 * the RLHF-vs-DPO comparison: every policy and best-of-n on one reward-versus-KL {@link Frontier}, its table and a
 * computed {@link io.sparkdpo.eval.FrontierVerdict} ({@code frontier.json}, and {@code frontier} in metrics.json).
 * PPO policies are sampled and scored exactly as DPO's, on the same prompts with the same seeds.
 */
public final class EvaluateJob {
  private static final Logger LOG = LoggerFactory.getLogger(EvaluateJob.class);
  /** Bump when the output for the same inputs and settings changes. */
  static final int VERSION = 1;
  public static final String MANIFEST = "manifest.json";
  public static final String STAGE = "evaluate";
  private static final String POLICY_CHOSEN = "policy_chosen_logps";
  private static final String POLICY_REJECTED = "policy_rejected_logps";
  /** Between a base path and its adapter folder in a run's starting model (neither path holds it). */
  private static final String ADAPTER_SEPARATOR = " + adapter ";
  /** Side-by-side continuations per policy in the report. */
  private static final int EXAMPLES_PER_POLICY = 3;

  /**
   * One run as evaluated: label (legend), its KL coefficient (DPO's beta, PPO's kl_coef), folder, its final model's
   * fingerprint, the earlier checkpoints evaluated with it ({@code evaluate.checkpoints}; empty otherwise), and its
   * method ({@code dpo} or {@code ppo}).
   */
  public record Run(String label, double beta, String dir, String modelFingerprint, List<Checkpoint> earlier,
      String method) {
    public Run {
      earlier = List.copyOf(earlier);
    }

    public boolean isPpo() {
      return FrontierPoint.PPO.equals(method);
    }
  }

  /**
   * An earlier checkpoint of a run: its step and model folder ({@code RUN/checkpoint-N}), or for a LoRA
   * run the base ({@code model.path}) and the checkpoint's adapter folder ({@code adapter}, else null).
   */
  public record Checkpoint(long step, String model, String fingerprint, String adapter) {}

  /**
   * @param upToDate the folder already held this evaluation and nothing was sampled
   * @param generation the generation-based result, read back from {@code generation.json} when up to date
   */
  public record Result(boolean upToDate, String outputDir, List<Run> runs, String sftModel,
      GenerationEval generation, double seconds, Frontier frontier) {}

  private final SparkSession spark;
  private final JobConfig config;

  public EvaluateJob(SparkSession spark, JobConfig config) {
    this.spark = spark;
    this.config = config;
  }

  /**
   * @param runDirs DPO run folders (each written by {@code train})
   * @param sftModel pi_SFT; null: the runs' common starting model ({@code model.path} of their run.json)
   * @param data a referenced folder (reference log-probs of pi_SFT) whose eval split every policy is measured on
   *     here (loss, accuracies, margins), or null: the runs' own last evaluation (metrics.jsonl) only
   * @param prompts {@code eval_prompts.jsonl} written by {@code generate}, or held-out text files or folders to cut
   *     prompts from with {@code generate}'s prompt rules
   */
  public Result run(List<String> runDirs, String sftModel, String data, List<String> prompts, String outputDir) {
    return run(runDirs, sftModel, data, prompts, null, outputDir);
  }

  /**
   * @param runDirs DPO run folders ({@code train}) and PPO run folders ({@code ppo}), in legend order
   * @param bestOfN a folder holding {@code best_of_n.json} (the {@code best-of-n} stage) on the same prompts, or null
   */
  public Result run(List<String> runDirs, String sftModel, String data, List<String> prompts, String bestOfN,
      String outputDir) {
    if (runDirs.isEmpty()) {
      throw new IllegalArgumentException("evaluate needs at least one DPO or PPO run folder (--run DIR)");
    }
    if (prompts.isEmpty()) {
      throw new IllegalArgumentException("evaluate needs held-out prompts (--prompts eval_prompts.jsonl or text)");
    }
    EvaluateSettings e = config.evaluate();
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    S3aSettings.hadoopProperties(config.storage().s3()).forEach(hadoop::set);
    Storage storage = new Storage(hadoop);
    String out = ReferenceJob.stripSlash(outputDir);
    long seed = config.model().seed();
    String device = config.model().device();

    List<Run> runs = new ArrayList<>();
    List<JsonNode> specs = new ArrayList<>();
    Set<String> startingModels = new java.util.TreeSet<>();
    for (String dir : runDirs) {
      String d = ReferenceJob.stripSlash(dir);
      JsonNode spec = readRunSpec(storage, d);
      specs.add(spec);
      boolean ppo = isPpo(spec);
      double beta = ppo ? ppoKlCoef(spec, d) : spec.path("dpo").path("beta").asDouble();
      // pi_SFT is what the run started from: model.path, with model.adapter on it when the run continued one.
      JsonNode start = spec.path("model");
      startingModels.add(start.path("adapter").isTextual()
          ? start.path("path").asText() + ADAPTER_SEPARATOR + start.path("adapter").asText()
          : start.path("path").asText());
      String model = Storage.join(d, "model");
      List<Checkpoint> earlier = new ArrayList<>();
      if (e.checkpoints()) {
        CheckpointStore store = new CheckpointStore(storage, d, null);
        long last = spec.path(ppo ? "total_updates" : "total_steps").asLong();
        for (long step : store.committedSteps()) {
          if (step < last) {
            io.sparkdpo.train.Checkpoint c = store.open(step);
            if (TrainerCheckpoint.holdsAdapter(c)) {
              String base = start.path("path").asText();
              String adapter = TrainerCheckpoint.adapterFolder(c);
              earlier.add(new Checkpoint(step, base, ModelSpec.resolve(base, adapter, seed, device, "auto", storage)
                  .fingerprint(), adapter));
            } else {
              String folder = TrainerCheckpoint.modelFolder(c);
              earlier.add(new Checkpoint(step, folder, ModelSpec.resolve(folder, seed, device, storage).fingerprint(),
                  null));
            }
          }
        }
      }
      runs.add(new Run(ppo ? ppoLabel(beta, ppoOracle(spec)) : label(beta), beta, d,
          ModelSpec.resolve(model, seed, device, storage).fingerprint(), earlier,
          ppo ? FrontierPoint.PPO : FrontierPoint.DPO));
    }
    if (runs.stream().map(Run::label).distinct().count() != runs.size()) {
      throw new IllegalArgumentException("two runs have the same beta or kl_coef " + runs + ": evaluate compares "
          + "runs by them");
    }
    String sftPath = sftModel;
    if (sftPath == null) {
      if (startingModels.size() != 1) {
        throw new IllegalArgumentException("the runs start from different models " + startingModels + ": name "
            + "pi_SFT with --sft-model");
      }
      sftPath = startingModels.iterator().next();
    }
    String sftAdapter = null;
    if (sftPath.contains(ADAPTER_SEPARATOR)) {
      sftAdapter = sftPath.substring(sftPath.indexOf(ADAPTER_SEPARATOR) + ADAPTER_SEPARATOR.length());
      sftPath = sftPath.substring(0, sftPath.indexOf(ADAPTER_SEPARATOR));
    }
    ModelSpec sft = ModelSpec.resolve(sftPath, sftAdapter, seed, device, config.model().dtype(), storage);
    TokenizerFiles tokenizer = TokenizerFiles.read(GenerateJob.tokenizerSpec(sftPath, storage), storage);
    List<TextPrompts.Prompt> heldOut = prompts(storage, prompts, tokenizer);
    String rewardName = RewardFunctions.load(e.reward(), storage).name();
    BestOfNReport curve = null;
    String curveDir = bestOfN == null ? null : ReferenceJob.stripSlash(bestOfN);
    if (bestOfN != null) {
      curve = BestOfNReport.read(storage, curveDir);
      if (curve.prompts() != heldOut.size()) {
        throw new IllegalArgumentException(Storage.join(curveDir, BestOfNReport.FILE) + ": field prompts is "
            + curve.prompts() + ", but the evaluation uses " + heldOut.size() + " held-out prompts: best-of-n must "
            + "run on the same prompts as the policies (the same prompts file and evaluate.num_prompts)");
      }
      Frontier.bestOfNPoints(curve, curveDir); // its fields checked before any sampling
      if (!curve.reward().equals(rewardName)) {
        throw new IllegalArgumentException(Storage.join(curveDir, BestOfNReport.FILE) + ": field reward is "
            + curve.reward() + ", but evaluate.reward is " + rewardName + ": one frontier needs one ground truth");
      }
    }
    PreparedData evalData = null;
    if (data != null) {
      evalData = PreparedData.open(storage, ReferenceJob.stripSlash(data));
      evalData.requireReferenceFrom(sftPath, sft.fingerprint());
      if (evalData.eval().stream().mapToLong(PreparedData.ShardInfo::rows).sum() == 0) {
        throw new IllegalArgumentException(data + " has no eval pairs to measure the policies on");
      }
    }

    ObjectNode settings = (ObjectNode) RecordedSettings.section(config, "evaluate");
    List<String> parts = new ArrayList<>(List.of("evaluate-v" + VERSION, sft.fingerprint(), tokenizer.fingerprint(),
        settings.toString(), promptsDigest(heldOut), evalData == null ? "no eval split" : evalData.fingerprint()));
    for (Run r : runs) {
      parts.add(r.label() + "|" + r.beta() + "|" + r.modelFingerprint() + "|"
          + PrepareJob.sha256(storage.readString(metricsPath(r))));
      r.earlier().forEach(c -> parts.add(r.label() + "|step " + c.step() + "|" + c.fingerprint()));
    }
    if (curve != null) { // only then: a DPO-only evaluation keeps its fingerprint
      parts.add("best-of-n|" + PrepareJob.sha256(storage.readString(Storage.join(curveDir, BestOfNReport.FILE))));
    }
    String fingerprint = PrepareJob.sha256(parts.toArray(String[]::new));
    boolean compares = curve != null || runs.stream().anyMatch(Run::isPpo);
    Optional<GenerationEval> existing = complete(storage, out, fingerprint);
    if (existing.isPresent()) {
      LOG.info("evaluate: {} is up to date (same models, prompts, metrics and settings; fingerprint {}): nothing to do",
          out, fingerprint.substring(0, 16));
      Frontier frontier = null;
      if (compares) {
        String f = Storage.join(out, EvaluationReport.FRONTIER_JSON);
        frontier = Frontier.fromJson(storage.readString(f), f);
      }
      return new Result(true, out, runs, sftPath, existing.get(), 0, frontier);
    }

    storage.delete(Storage.join(out, MANIFEST)); // first: a crash leaves an incomplete folder
    long start = System.nanoTime();
    SamplingSettings sampling = new SamplingSettings(e.temperature(), e.topK(), e.topP(), e.maxNewTokens(), e.seed());
    int perBatch = config.generate().promptsPerBatch();
    int partitions = config.generate().partitions();
    LOG.info("evaluate: {} held-out prompts x {} samples from pi_SFT {} and {} polic{}, reward {}", heldOut.size(),
        e.samplesPerPrompt(), sftPath, runs.size(), runs.size() == 1 ? "y" : "ies", rewardName);
    List<SampledPrompt> sftSamples = SamplingJob.run(spark, heldOut,
        new SamplingRequest(sft, null, tokenizer, sampling, e.samplesPerPrompt(), perBatch, e.reward(), partitions))
        .prompts();
    GenerationEval.Builder builder = GenerationEval.builder(rewardName,
        GenerationEval.Sampling.of(e, heldOut.size()), e.confidenceLevel(), SampledArrays.rewards(sftSamples));
    List<TrainingRun> training = new ArrayList<>();
    List<TrainingRun> ppoTraining = new ArrayList<>();
    Map<String, double[]> perPrompt = new LinkedHashMap<>();
    Map<String, EvalSplitMetrics> evalSplit = new LinkedHashMap<>();
    for (int k = 0; k < runs.size(); k++) {
      Run r = runs.get(k);
      ModelSpec policy = new ModelSpec(Storage.join(r.dir(), "model"), seed, device, r.modelFingerprint(),
          config.model().dtype());
      List<SampledPrompt> policySamples = SamplingJob.run(spark, heldOut,
          new SamplingRequest(policy, sft, tokenizer, sampling, e.samplesPerPrompt(), perBatch, e.reward(),
              partitions)).prompts();
      if (evalData != null && !r.isPpo()) {
        evalSplit.put(r.label(), evalSplit(evalData, policy, specs.get(k).path("dpo")));
      }
      TrainingRun run = TrainingRun.read(storage, r.label(), r.beta(), metricsPath(r));
      (r.isPpo() ? ppoTraining : training).add(run);
      for (Checkpoint c : r.earlier()) {
        List<SampledPrompt> at = SamplingJob.run(spark, heldOut, new SamplingRequest(
            new ModelSpec(c.model(), seed, device, c.fingerprint(), config.model().dtype(), c.adapter()), sft,
            tokenizer, sampling, e.samplesPerPrompt(),
            perBatch, e.reward(), partitions)).prompts();
        builder.addPolicy(r.label(), r.beta(), c.step(), SampledArrays.rewards(at), SampledArrays.logProbs(at),
            SampledArrays.scorerLogProbs(at));
        perPrompt.put(r.label() + "@" + c.step(), PolicyEval.perPromptMeans(SampledArrays.rewards(at), r.label()));
      }
      builder.addPolicy(r.label(), r.beta(), run.metrics().lastStep(), SampledArrays.rewards(policySamples),
          SampledArrays.logProbs(policySamples), SampledArrays.scorerLogProbs(policySamples));
      perPrompt.put(r.label() + "@" + run.metrics().lastStep(),
          PolicyEval.perPromptMeans(SampledArrays.rewards(policySamples), r.label()));
      for (int i = 0; i < Math.min(EXAMPLES_PER_POLICY, heldOut.size()); i++) {
        SampledPrompt.Continuation s = sftSamples.get(i).continuations().get(0);
        SampledPrompt.Continuation p = policySamples.get(i).continuations().get(0);
        builder.addExample(new GenerationEval.Example(heldOut.get(i).text(), s.text(), s.reward(), r.label(),
            p.text(), p.reward()));
      }
    }
    GenerationEval gen = builder.build();
    Frontier frontier = null;
    if (compares) {
      List<Frontier.Run> entries = new ArrayList<>();
      for (Run r : runs) {
        entries.add(new Frontier.Run(r.label(), r.method(), r.beta(), r.isPpo() ? r.label() : "DPO " + r.label()));
      }
      frontier = Frontier.of(gen, entries, curve, curveDir, perPrompt);
      LOG.info("evaluate: {}", frontier.verdict().text());
    }
    EvaluationReport.Written written = EvaluationReport.write(storage, out, training, gen,
        evalSplit.isEmpty() ? null : ReferenceJob.stripSlash(data), evalSplit, frontier, ppoTraining);
    double seconds = (System.nanoTime() - start) / 1e9;
    writeManifest(storage, out, fingerprint, sftPath, sft.fingerprint(), runs, prompts, heldOut.size(), rewardName,
        written, seconds, curveDir);
    LOG.info("evaluate: wrote {} and {} in {} s", written.html(), written.metricsJson(),
        String.format(Locale.ROOT, "%.1f", seconds));
    return new Result(false, out, runs, sftPath, gen, seconds, frontier);
  }

  /**
   * A policy's preference metrics on the eval split: its log-probs of every eval pair, computed on executors by the
   * {@link ReferenceLogProbs} transformer with the policy as the model, against the folder's pi_SFT log-probs.
   */
  private EvalSplitMetrics evalSplit(PreparedData data, ModelSpec policy, JsonNode dpo) {
    Dataset<Row> pairs = spark.read().parquet(data.evalFiles().stream().map(Storage::qualify).toArray(String[]::new));
    ReferenceLogProbs scorer = new ReferenceLogProbs().setModel(policy.path()).setModelSeed(policy.builtinSeed())
        .setModelFingerprint(policy.fingerprint()).setDevice(policy.device())
        .setBatchTokens(config.reference().batchTokens()).setSortWindow(config.reference().sortWindow())
        .setChosenLogpCol(POLICY_CHOSEN).setRejectedLogpCol(POLICY_REJECTED)
        .setChosenTokensCol(POLICY_CHOSEN + "_tokens").setRejectedTokensCol(POLICY_REJECTED + "_tokens");
    List<String> columns = List.of(pairs.columns());
    String refChosen = ReferenceColumns.chosenIn(columns);
    String refRejected = ReferenceColumns.rejectedIn(columns);
    if (refChosen == null || refRejected == null) {
      throw new IllegalArgumentException(data.dir() + ": the eval split's shards have no reference log-probs ("
          + ReferenceColumns.CHOSEN_LOGPS + ", " + ReferenceColumns.REJECTED_LOGPS + "): run the reference stage on it");
    }
    List<Row> rows = scorer.transform(pairs).select(POLICY_CHOSEN, POLICY_REJECTED, refChosen, refRejected)
        .collectAsList();
    double[][] v = new double[4][rows.size()];
    for (int i = 0; i < rows.size(); i++) {
      for (int c = 0; c < 4; c++) {
        v[c][i] = rows.get(i).getDouble(c);
      }
    }
    return EvalSplitMetrics.of(dpo.path("beta").asDouble(), dpo.path("labelSmoothing").asDouble(0),
        plainSigmoid(dpo), v[0], v[1], v[2], v[3]);
  }

  /**
   * True when the run trained on the loss {@link EvalSplitMetrics} computes: {@code loss_type} sigmoid alone (a list
   * since TRL's loss lists, a string in older run.json files), weight 1, no {@code rpo_alpha} NLL term.
   */
  static boolean plainSigmoid(JsonNode dpo) {
    JsonNode type = dpo.path("lossType");
    JsonNode only = type.isArray() ? (type.size() == 1 ? type.get(0) : null) : type;
    JsonNode weights = dpo.path("lossWeights");
    boolean unweighted = weights.isMissingNode() || weights.isNull()
        || (weights.size() == 1 && weights.get(0).asDouble() == 1.0);
    JsonNode rpo = dpo.path("rpoAlpha");
    return only != null && "sigmoid".equalsIgnoreCase(only.asText()) && unweighted
        && (rpo.isMissingNode() || rpo.isNull());
  }

  /** The legend name of a DPO run: its beta. */
  static String label(double beta) {
    return "β=" + betaText(beta);
  }

  /** The legend name of a PPO run: its kl_coef; PPO-GT when it optimised the ground truth (as the DPO paper). */
  static String ppoLabel(double klCoef, boolean oracle) {
    return (oracle ? "PPO-GT" : "PPO") + " kl_coef=" + betaText(klCoef);
  }

  /**
   * True for the spec of a PPO run (what {@code spark-dpo ppo} records in run.json: the {@code ppo} section, the
   * reward's kind, the number of updates), false for a DPO run's.
   */
  static boolean isPpo(JsonNode spec) {
    return spec.path("ppo").isObject() && spec.path("reward_kind").isTextual();
  }

  /** A PPO run's {@code ppo.kl_coef} from its run.json spec. */
  static double ppoKlCoef(JsonNode spec, String runDir) {
    JsonNode k = spec.path("ppo").path("klCoef");
    if (!k.isNumber()) {
      throw new IllegalArgumentException(Storage.join(runDir, "run.json") + ": a PPO run without a numeric "
          + "ppo.kl_coef in its spec");
    }
    return k.asDouble();
  }

  /** True when a PPO run's reward was the ground-truth function (no reward model): labelled oracle. */
  static boolean ppoOracle(JsonNode spec) {
    return "oracle".equals(spec.path("reward_kind").asText());
  }

  /** A beta as written in configs: 0.1, 0.5, 2. */
  public static String betaText(double beta) {
    return java.math.BigDecimal.valueOf(beta).stripTrailingZeros().toPlainString();
  }

  private static String metricsPath(Run r) {
    return Storage.join(r.dir(), "metrics.jsonl");
  }

  /** The {@code spec} of {@code RUN/run.json}, which must be a DPO or a PPO run. */
  static JsonNode readRunSpec(Storage storage, String runDir) {
    String path = Storage.join(runDir, "run.json");
    if (!storage.exists(path)) {
      throw new IllegalArgumentException(runDir + " is not a training run folder: run.json is missing");
    }
    JsonNode spec;
    try {
      spec = Json.MAPPER.readTree(storage.readBytes(path)).path("spec");
    } catch (IOException ex) {
      throw new UncheckedIOException(path + " cannot be parsed: " + ex.getMessage(), ex);
    }
    boolean dpo = "dpo".equals(spec.path("stage").asText()) && spec.path("dpo").path("beta").isNumber();
    if (!dpo && !isPpo(spec)) {
      throw new IllegalArgumentException(path + ": not a DPO or PPO run (stage " + spec.path("stage") + "); "
          + "evaluate compares DPO and PPO policies with pi_SFT");
    }
    for (String f : List.of("model/config.json", "metrics.jsonl")) {
      if (!storage.exists(Storage.join(runDir, f))) {
        throw new IllegalArgumentException(runDir + ": " + f + " is missing: has the run finished?");
      }
    }
    return spec;
  }

  /** Prompts written by generate (a {@code .jsonl} file), or cut from held-out text; at most num_prompts. */
  List<TextPrompts.Prompt> prompts(Storage storage, List<String> sources, TokenizerFiles tokenizer) {
    int n = config.evaluate().numPrompts();
    List<TextPrompts.Prompt> out;
    if (sources.size() == 1 && sources.get(0).endsWith(".jsonl")) {
      out = GenerateJob.readPrompts(storage, sources.get(0));
      out = out.subList(0, Math.min(n, out.size()));
    } else {
      GenerateSettings g = config.generate();
      out = TextPrompts.cut(storage, TextPrompts.files(storage, sources), TextTokenizer.of(tokenizer),
          new TextPrompts.Rules(n, g.promptMinWords(), g.promptMaxWords(), g.minParagraphWords(), g.seed()), Set.of());
    }
    if (out.size() < 2) {
      throw new IllegalArgumentException(sources + " gives " + out.size() + " prompt(s); evaluation needs at least 2 "
          + "for a confidence interval");
    }
    return List.copyOf(out);
  }

  private static String promptsDigest(List<TextPrompts.Prompt> prompts) {
    StringBuilder sb = new StringBuilder();
    for (TextPrompts.Prompt p : prompts) {
      sb.append(p.index()).append('\t').append(p.text()).append('\n');
    }
    return PrepareJob.sha256(sb.toString());
  }

  private void writeManifest(Storage storage, String out, String fingerprint, String sftPath, String sftFingerprint,
      List<Run> runs, List<String> promptSources, int prompts, String rewardName, EvaluationReport.Written written,
      double seconds, String bestOfNDir) {
    ObjectNode m = Json.MAPPER.createObjectNode();
    m.put("stage", STAGE);
    m.put("version", VERSION);
    m.put("created_at", Instant.now().toString());
    m.put("fingerprint", fingerprint);
    m.putObject("sft").put("path", sftPath).put("fingerprint", sftFingerprint);
    ArrayNode rs = m.putArray("runs");
    for (Run r : runs) {
      ObjectNode run = rs.addObject().put("label", r.label()).put("beta", r.beta()).put("dir", r.dir())
          .put("model_fingerprint", r.modelFingerprint()).put("method", r.method());
      ArrayNode earlier = run.putArray("checkpoints");
      r.earlier().forEach(c -> earlier.addObject().put("step", c.step()).put("model", c.model())
          .put("fingerprint", c.fingerprint()));
    }
    ObjectNode p = m.putObject("prompts");
    p.put("count", prompts);
    promptSources.forEach(p.putArray("sources")::add);
    m.putObject("reward").put("spec", config.evaluate().reward()).put("name", rewardName);
    ArrayNode files = m.putArray("files");
    files.add(EvaluationReport.METRICS_JSON);
    files.add(EvaluationReport.GENERATION_JSON);
    files.add(EvaluationReport.REPORT_HTML);
    if (bestOfNDir != null || runs.stream().anyMatch(Run::isPpo)) {
      files.add(EvaluationReport.FRONTIER_JSON);
      m.putObject("best_of_n").put("dir", bestOfNDir);
    }
    written.charts().forEach(c -> files.add(c.substring(c.lastIndexOf('/') + 1)));
    m.put("seconds", seconds);
    m.set("config", RecordedSettings.section(config, "evaluate"));
    storage.writeJson(Storage.join(out, MANIFEST), m);
  }

  /** The stored evaluation if the folder's manifest has this fingerprint and every file it lists is there. */
  private static Optional<GenerationEval> complete(Storage storage, String dir, String fingerprint) {
    String path = Storage.join(dir, MANIFEST);
    if (!storage.exists(path)) {
      return Optional.empty();
    }
    try {
      JsonNode m = Json.MAPPER.readTree(storage.readBytes(path));
      if (!STAGE.equals(m.path("stage").asText()) || !fingerprint.equals(m.path("fingerprint").asText())) {
        LOG.info("evaluate: {} holds another evaluation (other models, prompts, metrics or settings); evaluating again",
            dir);
        return Optional.empty();
      }
      for (JsonNode f : m.path("files")) {
        if (!storage.exists(Storage.join(dir, f.asText()))) {
          return Optional.empty();
        }
      }
      String gen = Storage.join(dir, EvaluationReport.GENERATION_JSON);
      return Optional.of(GenerationEval.fromJson(storage.readString(gen), gen));
    } catch (IOException | RuntimeException ex) {
      LOG.info("evaluate: {} holds no usable manifest ({}); evaluating again", dir, ex.getMessage());
      return Optional.empty();
    }
  }
}
