package io.sparkdpo.inference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.EvaluateSettings;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.RecordedSettings;
import io.sparkdpo.config.ScoreSettings;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.data.TokenizerFiles;
import io.sparkdpo.eval.BestOfNReport;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.SamplingSettings;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code spark-dpo best-of-n}: best-of-n from pi_SFT as a policy on the reward-versus-KL frontier. Per held-out
 * prompt (the evaluation's prompts: {@code score.prompts}, the first {@code evaluate.num_prompts}, chosen as
 * {@code evaluate} chooses them) executors sample {@code max(score.best_of_n)} continuations from pi_SFT
 * ({@code model.path}, with {@code model.adapter}) with {@code evaluate:}'s sampling settings and seed
 * ({@link SamplingJob}: the same pool whatever the partitioning) and score each with the ground-truth reward
 * ({@code evaluate.reward}); the selector ({@link TextScorer}: {@code score.model}, or the ground truth itself as a
 * labelled oracle) scores the same texts; then {@link BestOfNReport} for each n over the nested pool. Writes
 * {@code OUT/best_of_n.json}, {@code OUT/samples/} (every sample with its selector score and reward, Parquet) and
 * {@code OUT/manifest.json} last, whose fingerprint makes a rerun with the same inputs a no-op.
 */
public final class BestOfNJob {
  private static final Logger LOG = LoggerFactory.getLogger(BestOfNJob.class);
  /** Bump when the output for the same inputs and settings changes. */
  static final int VERSION = 1;
  public static final String STAGE = "best-of-n";
  public static final String MANIFEST = "manifest.json";
  public static final String SAMPLES = "samples";

  /** @param upToDate the folder already held this result and nothing was sampled */
  public record Result(boolean upToDate, String outputDir, BestOfNReport report) {}

  private final SparkSession spark;
  private final JobConfig config;

  public BestOfNJob(SparkSession spark, JobConfig config) {
    this.spark = spark;
    this.config = config;
  }

  /** Best-of-n on {@code score.prompts} into {@code score.best_of_n_output_dir}. */
  public Result run() {
    return run(config.score().prompts(), config.score().bestOfNOutputDir());
  }

  /**
   * @param promptSources generate's {@code eval_prompts.jsonl} (one file), or held-out text to cut prompts from as
   *     {@code evaluate} does
   */
  public Result run(List<String> promptSources, String outputDir) {
    if (promptSources.isEmpty()) {
      throw new IllegalArgumentException("best-of-n needs held-out prompts: --prompts PATH (or score.prompts), e.g. "
          + "runs/pipeline/generated/eval_prompts.jsonl");
    }
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    S3aSettings.hadoopProperties(config.storage().s3()).forEach(hadoop::set);
    Storage storage = new Storage(hadoop);
    String out = ReferenceJob.stripSlash(outputDir);
    ScoreSettings s = config.score();
    EvaluateSettings e = config.evaluate();
    String sftPath = config.model().path();
    ModelSpec sft = ModelSpec.resolve(sftPath, config.model().adapter(), config.model().seed(),
        config.model().device(), config.model().dtype(), storage);
    TokenizerFiles tokenizer = TokenizerFiles.read(GenerateJob.tokenizerSpec(sftPath, storage), storage);
    String rewardName = RewardFunctions.load(e.reward(), storage).name();
    // Without a reward model the oracle selects with the ground truth, unless score.reward names another function.
    TextScorer selector = TextScorer.of(config, storage);
    List<TextPrompts.Prompt> prompts = new EvaluateJob(spark, config).prompts(storage, promptSources, tokenizer);
    int pool = s.bestOfNSamples();

    ObjectNode evaluate = (ObjectNode) RecordedSettings.section(config, "evaluate");
    evaluate.remove(List.of("samples_per_prompt", "checkpoints"));
    StringBuilder promptDigest = new StringBuilder();
    prompts.forEach(p -> promptDigest.append(p.index()).append('\t').append(p.text()).append('\n'));
    String fingerprint = PrepareJob.sha256("best-of-n-v" + VERSION, sft.fingerprint() + "/" + sft.dtype(),
        tokenizer.fingerprint(), selector.fingerprint(), evaluate.toString(), s.bestOfN().toString(),
        // batch shapes may round differently in the last bit
        "prompts_per_batch=" + config.generate().promptsPerBatch(), "batch_tokens=" + s.batchTokens(),
        PrepareJob.sha256(promptDigest.toString()));
    BestOfNReport existing = upToDate(storage, out, fingerprint);
    if (existing != null) {
      LOG.info("best-of-n: {} is up to date (same pi_SFT, prompts, selector and settings; fingerprint {}): nothing "
          + "to do", out, fingerprint.substring(0, 16));
      return new Result(true, out, existing);
    }

    storage.delete(Storage.join(out, MANIFEST)); // first: a crash leaves an incomplete folder
    storage.delete(Storage.join(out, BestOfNReport.FILE));
    storage.delete(Storage.join(out, SAMPLES));
    storage.mkdirs(out);
    long start = System.nanoTime();
    LOG.info("best-of-n: {} held-out prompts x {} samples from pi_SFT {}; selector {} ({}), reward {}; n = {}",
        prompts.size(), pool, sftPath, selector.label(), selector.kind().jsonName(), rewardName, s.bestOfN());
    SamplingSettings sampling = new SamplingSettings(e.temperature(), e.topK(), e.topP(), e.maxNewTokens(), e.seed());
    SamplingJob.Result sampled = SamplingJob.run(spark, prompts, new SamplingRequest(sft, null, tokenizer, sampling,
        pool, config.generate().promptsPerBatch(), e.reward(), config.generate().partitions()));
    double[][] truth = SampledArrays.rewards(sampled.prompts());
    double[][] selected = selectorScores(selector, sampled.prompts(), truth);
    BestOfNReport report = BestOfNReport.of(selector.label(), selector.kind().jsonName(), rewardName,
        e.confidenceLevel(), selected, truth, s.bestOfN());
    report.write(storage, out);
    writeSamples(Storage.qualify(Storage.join(out, SAMPLES)), sampled.prompts(), selected);
    double seconds = (System.nanoTime() - start) / 1e9;

    ObjectNode m = Json.MAPPER.createObjectNode();
    m.put("stage", STAGE);
    m.put("version", VERSION);
    m.put("created_at", Instant.now().toString());
    m.put("fingerprint", fingerprint);
    ObjectNode model = m.putObject("sft_model");
    model.put("path", sftPath);
    model.put("adapter", config.model().adapter());
    model.put("fingerprint", sft.fingerprint());
    m.put("selector", selector.label());
    m.put("selector_kind", selector.kind().jsonName());
    m.put("selector_fingerprint", selector.fingerprint());
    if (selector.encoding() != null) {
      m.set("encoding", ScoreJob.encoding(selector.encoding(), s.prepared()));
    }
    m.put("reward", rewardName);
    m.set("prompt_sources", Json.MAPPER.valueToTree(promptSources));
    m.put("prompts", prompts.size());
    m.put("samples_per_prompt", pool);
    ObjectNode files = m.putObject("files");
    files.put("best_of_n", BestOfNReport.FILE);
    files.put("samples", SAMPLES);
    ExecutorStats.Summary ex = sampled.executors();
    ObjectNode executors = m.putObject("executors");
    executors.put("tasks", ex.tasks());
    executors.put("model_loads", ex.modelLoads());
    executors.put("jvms", ex.jvms().size());
    m.put("seconds", seconds);
    m.set("config", RecordedSettings.of(config, List.of("score", "evaluate", "model.path", "model.adapter")));
    storage.writeJson(Storage.join(out, MANIFEST), m);
    for (BestOfNReport.Point p : report.points()) {
      LOG.info(String.format(Locale.ROOT, "best-of-%d: reward %.4f [%.4f, %.4f], improvement %.4f [%.4f, %.4f], "
          + "selector %.4f, KL %.3f (analytic)", p.n(), p.rewardMean(), p.rewardLow(), p.rewardHigh(),
          p.improvementMean(), p.improvementLow(), p.improvementHigh(), p.selectorScore(), p.kl()));
    }
    LOG.info("best-of-n: wrote {} in {} s", out, String.format(Locale.ROOT, "%.1f", seconds));
    return new Result(false, out, report);
  }

  /** The selector's score of every sample: the ground truth again for an oracle of it, else scored on executors. */
  private double[][] selectorScores(TextScorer selector, List<SampledPrompt> sampled, double[][] truth) {
    if (selector.kind() == TextScorer.Kind.ORACLE && selector.rewardSpec().equals(config.evaluate().reward())) {
      return truth; // the executors computed these with the samples
    }
    List<String> prompts = new ArrayList<>();
    List<String> texts = new ArrayList<>();
    for (SampledPrompt p : sampled) {
      for (SampledPrompt.Continuation c : p.continuations()) {
        prompts.add(p.prompt().text());
        texts.add(c.text());
      }
    }
    double[] flat = selector.score(spark, prompts, texts, "best-of-n samples").scores();
    double[][] out = new double[sampled.size()][];
    int k = 0;
    for (int p = 0; p < out.length; p++) {
      out[p] = new double[sampled.get(p).continuations().size()];
      for (int i = 0; i < out[p].length; i++) {
        out[p][i] = flat[k++];
      }
    }
    return out;
  }

  private void writeSamples(String path, List<SampledPrompt> sampled, double[][] selected) {
    StructType schema = new StructType()
        .add("prompt_index", DataTypes.IntegerType, false)
        .add("prompt", DataTypes.StringType, false)
        .add("sample", DataTypes.IntegerType, false)
        .add("continuation", DataTypes.StringType, false)
        .add("reward", DataTypes.DoubleType, false)
        .add("selector_score", DataTypes.DoubleType, false)
        .add("tokens", DataTypes.IntegerType, false)
        .add("stopped", DataTypes.BooleanType, false);
    List<Row> rows = new ArrayList<>();
    for (int p = 0; p < sampled.size(); p++) {
      SampledPrompt sp = sampled.get(p);
      for (int i = 0; i < sp.continuations().size(); i++) {
        SampledPrompt.Continuation c = sp.continuations().get(i);
        rows.add(RowFactory.create(sp.prompt().index(), sp.prompt().text(), c.sample(), c.text(), c.reward(),
            selected[p][i], c.tokens().length, c.stopped()));
      }
    }
    spark.createDataFrame(rows, schema).coalesce(1).write().mode("overwrite").parquet(path);
  }

  /** The folder's result when its manifest has this fingerprint and its files are there; else null. */
  static BestOfNReport upToDate(Storage storage, String dir, String fingerprint) {
    String path = Storage.join(dir, MANIFEST);
    if (!storage.exists(path)) {
      return null;
    }
    try {
      JsonNode m = Json.MAPPER.readTree(storage.readBytes(path));
      if (!STAGE.equals(m.path("stage").asText()) || !fingerprint.equals(m.path("fingerprint").asText())
          || !storage.exists(Storage.join(dir, SAMPLES))) {
        return null;
      }
      return BestOfNReport.read(storage, dir);
    } catch (IOException | RuntimeException ex) {
      LOG.info("best-of-n: {} holds no usable result ({}); sampling again", dir, ex.getMessage());
      return null;
    }
  }
}
