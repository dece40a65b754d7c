package io.sparkdpo.inference;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.GenerateSettings;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.RecordedSettings;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.data.TokenizerFiles;
import io.sparkdpo.eval.PreferenceLabeler;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.SamplingSettings;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code generate} stage of the controlled-sentiment experiment (the DPO paper's IMDb setup in miniature):
 * prompts are short prefixes of paragraphs of training text ({@link TextPrompts}); Spark executors sample K
 * continuations per prompt from pi_SFT ({@link SamplingJob}: model loaded once per JVM, seeded per prompt, so the
 * pairs do not depend on the partitioning); the ground-truth reward ({@code evaluate.reward}) scores each
 * continuation; the best is {@code chosen}, the worst {@code rejected}, ties dropped and counted
 * ({@link PreferenceLabeler}); with {@code generate.labeler} a reward model's scores ({@link TextScorer}) label them
 * instead, and {@code samples/} keeps both. Writes {@code pairs.jsonl} (TRL rows that {@code prepare --format trl} reads),
 * {@code prompts.jsonl}, optionally {@code eval_prompts.jsonl} (held-out prompts from other text, never a training
 * prompt) and {@code samples/} (every scored continuation, Parquet), and {@code manifest.json} last. The same inputs
 * again: nothing to do.
 */
public final class GenerateJob {
  private static final Logger LOG = LoggerFactory.getLogger(GenerateJob.class);
  /** Bump when the output for the same inputs and settings changes. */
  static final int VERSION = 1;
  public static final String PAIRS = "pairs.jsonl";
  public static final String PROMPTS = "prompts.jsonl";
  public static final String EVAL_PROMPTS = "eval_prompts.jsonl";
  public static final String SAMPLES = "samples";

  /** @param upToDate the folder already held this output and nothing was sampled */
  public record Result(boolean upToDate, String outputDir, GenerateManifest manifest) {}

  private final SparkSession spark;
  private final JobConfig config;

  public GenerateJob(SparkSession spark, JobConfig config) {
    this.spark = spark;
    this.config = config;
  }

  public Result run(String outputDir) {
    GenerateSettings g = config.generate();
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    S3aSettings.hadoopProperties(config.storage().s3()).forEach(hadoop::set);
    Storage storage = new Storage(hadoop);
    String out = ReferenceJob.stripSlash(outputDir);
    if (g.prompts().isEmpty()) {
      throw new IllegalArgumentException("generate needs prompt text: --prompts PATH (or generate.prompts), e.g. "
          + "sample-data/corpus/moby-dick/train");
    }
    String modelPath = g.modelOr(config.model());
    // model.adapter belongs to model.path: sampled from base + adapter unless generate.model names another model.
    String adapter = g.model() == null ? config.model().adapter() : null;
    ModelSpec model = ModelSpec.resolve(modelPath, adapter, config.model().seed(), g.deviceOr(config.model()),
        config.model().dtype(), storage);
    TokenizerFiles tokenizerFiles = TokenizerFiles.read(tokenizerSpec(modelPath, storage), storage);
    List<FileStatus> promptFiles = TextPrompts.files(storage, g.prompts());
    List<FileStatus> evalFiles = g.evalPrompts().isEmpty() ? List.of() : TextPrompts.files(storage, g.evalPrompts());
    refuseSharedFiles(promptFiles, evalFiles);
    String rewardName = RewardFunctions.load(config.evaluate().reward(), storage).name();
    // generate.labeler: a reward model (or function) labels the pairs instead of the ground truth; checked here.
    TextScorer labeler = g.labeler() == null ? null : TextScorer.named(config, g.labeler(), storage);

    ObjectNode settings = (ObjectNode) RecordedSettings.section(config, "generate");
    settings.remove(List.of("partitions", "prompts", "eval_prompts", "model", "device", "labeler"));
    // float32 samples keep the fingerprint they had before dtypes existed.
    String modelKey = model.dtype().equals("float32") ? model.fingerprint() : model.fingerprint() + "/" + model.dtype();
    List<String> parts = new ArrayList<>(List.of("generate-v" + VERSION, modelKey, tokenizerFiles.fingerprint(),
        config.evaluate().reward(), settings.toString(), "eval_prompts=" + config.evaluate().numPrompts(),
        files(promptFiles), files(evalFiles)));
    if (labeler != null) {
      parts.add("labeler=" + labeler.fingerprint());
    }
    String fingerprint = PrepareJob.sha256(parts.toArray(String[]::new));
    Optional<GenerateManifest> existing = complete(storage, out, fingerprint);
    if (existing.isPresent()) {
      LOG.info("generate: {} is up to date (same model, prompts, reward and settings; fingerprint {}): nothing to do",
          out, fingerprint.substring(0, 16));
      return new Result(true, out, existing.get());
    }

    TextTokenizer tokenizer = TextTokenizer.of(tokenizerFiles);
    TextPrompts.Rules rules = new TextPrompts.Rules(g.numPrompts(), g.promptMinWords(), g.promptMaxWords(),
        g.minParagraphWords(), g.seed());
    List<TextPrompts.Prompt> prompts = TextPrompts.cut(storage, promptFiles, tokenizer, rules, Set.of());
    if (prompts.isEmpty()) {
      throw new IllegalArgumentException("no paragraph of " + g.prompts() + " has " + g.minParagraphWords()
          + " words or more (generate.min_paragraph_words): no prompts");
    }
    List<TextPrompts.Prompt> evalPrompts = List.of();
    if (!evalFiles.isEmpty()) {
      Set<String> training = new HashSet<>();
      prompts.forEach(p -> training.add(p.text()));
      evalPrompts = TextPrompts.cut(storage, evalFiles, tokenizer, new TextPrompts.Rules(config.evaluate().numPrompts(),
          g.promptMinWords(), g.promptMaxWords(), g.minParagraphWords(), g.seed()), training);
    }

    storage.delete(Storage.join(out, GenerateManifest.FILE)); // first: a crash leaves an incomplete folder
    for (String f : List.of(PAIRS, PROMPTS, EVAL_PROMPTS, SAMPLES)) {
      storage.delete(Storage.join(out, f));
    }
    storage.mkdirs(out);
    LOG.info("generate: {} prompts x {} samples from {} (fingerprint {}), reward {}", prompts.size(),
        g.samplesPerPrompt(), modelPath, model.shortFingerprint(), rewardName);
    long start = System.nanoTime();
    SamplingRequest request = new SamplingRequest(model, null, tokenizerFiles,
        new SamplingSettings(g.temperature(), g.topK(), g.topP(), g.maxNewTokens(), g.seed()), g.samplesPerPrompt(),
        g.promptsPerBatch(), config.evaluate().reward(), g.partitions());
    SamplingJob.Result sampled = SamplingJob.run(spark, prompts, request);
    double seconds = (System.nanoTime() - start) / 1e9;

    double[][] labelScores = labeler == null ? SampledArrays.rewards(sampled.prompts())
        : labelerScores(labeler, sampled.prompts());
    Labels labels = label(sampled.prompts(), labelScores, labeler == null ? rewardName : labeler.label());
    PreferenceLabeler.writeTrlJsonl(storage, Storage.join(out, PAIRS), labels.result().pairs());
    writePrompts(storage, Storage.join(out, PROMPTS), prompts);
    if (!evalFiles.isEmpty()) {
      writePrompts(storage, Storage.join(out, EVAL_PROMPTS), evalPrompts);
    }
    if (g.writeSamples()) {
      writeSamples(Storage.qualify(Storage.join(out, SAMPLES)), sampled.prompts(),
          labeler == null ? null : labelScores);
    }
    long samples = 0;
    long empty = 0;
    long stopped = 0;
    long tokens = 0;
    for (SampledPrompt p : sampled.prompts()) {
      for (SampledPrompt.Continuation c : p.continuations()) {
        samples++;
        empty += c.text().isBlank() ? 1 : 0;
        stopped += c.stopped() ? 1 : 0;
        tokens += c.tokens().length;
      }
    }
    PreferenceLabeler.Result r = labels.result();
    ExecutorStats.Summary ex = sampled.executors();
    ObjectNode cfg = Json.MAPPER.createObjectNode();
    cfg.set("generate", withoutUnsetLabeler(RecordedSettings.section(config, "generate")));
    cfg.set("evaluate", RecordedSettings.section(config, "evaluate"));
    GenerateManifest manifest = new GenerateManifest(GenerateManifest.STAGE, VERSION, Instant.now().toString(),
        fingerprint, new GenerateManifest.Model(modelPath, model.fingerprint()), tokenizerFiles.fingerprint(),
        new GenerateManifest.Reward(config.evaluate().reward(), rewardName), paths(promptFiles), paths(evalFiles),
        new GenerateManifest.Counts(prompts.size(), samples, r.pairs().size(), r.droppedTies(),
            r.droppedIdenticalTexts(), labels.droppedEmpty(), empty, stopped, tokens, evalPrompts.size()),
        new GenerateManifest.Files(PAIRS, PROMPTS, evalFiles.isEmpty() ? null : EVAL_PROMPTS,
            g.writeSamples() ? SAMPLES : null),
        new GenerateManifest.Executors(ex.tasks(), ex.modelLoads(), ex.jvms().size()), seconds, cfg);
    manifest.write(storage, out);
    LOG.info("generate: {} pairs from {} prompts ({} ties, {} identical, {} without two non-empty continuations "
        + "dropped); model loaded {} time(s) by {} task(s) in {} JVM(s); wrote {}", r.pairs().size(), prompts.size(),
        r.droppedTies(), r.droppedIdenticalTexts(), labels.droppedEmpty(), ex.modelLoads(), ex.tasks(),
        ex.jvms().size(), out);
    return new Result(false, out, manifest);
  }

  /** Labelling's outcome, plus the prompts that had fewer than two non-empty continuations to compare. */
  record Labels(PreferenceLabeler.Result result, int droppedEmpty) {}

  /** {@code generate.labeler} unset leaves the recorded settings (and so the fingerprint) as they were before it. */
  private static ObjectNode withoutUnsetLabeler(com.fasterxml.jackson.databind.JsonNode section) {
    ObjectNode s = (ObjectNode) section;
    if (s.path("labeler").isNull()) {
      s.remove("labeler");
    }
    return s;
  }

  /** The labeler's score of every continuation, [prompt][sample], computed on executors. */
  private double[][] labelerScores(TextScorer labeler, List<SampledPrompt> sampled) {
    List<String> prompts = new ArrayList<>();
    List<String> texts = new ArrayList<>();
    for (SampledPrompt p : sampled) {
      for (SampledPrompt.Continuation c : p.continuations()) {
        prompts.add(p.prompt().text());
        texts.add(c.text());
      }
    }
    double[] flat = labeler.score(spark, prompts, texts, "generated samples").scores();
    double[][] out = new double[sampled.size()][];
    int k = 0;
    for (int p = 0; p < out.length; p++) {
      out[p] = java.util.Arrays.copyOfRange(flat, k, k + sampled.get(p).continuations().size());
      k += out[p].length;
    }
    LOG.info("generate: pairs labelled by {} ({}), not by the ground truth", labeler.label(),
        labeler.kind().jsonName());
    return out;
  }

  /** Best and worst non-empty continuation per prompt, by {@code scores} [prompt][sample]. */
  static Labels label(List<SampledPrompt> sampled, double[][] scores, String rewardName) {
    List<PreferenceLabeler.PromptSamples> samples = new ArrayList<>();
    List<double[]> rewards = new ArrayList<>();
    int droppedEmpty = 0;
    for (int i = 0; i < sampled.size(); i++) {
      SampledPrompt p = sampled.get(i);
      List<SampledPrompt.Continuation> usable = p.continuations().stream().filter(c -> !c.text().isBlank()).toList();
      if (usable.size() < 2) {
        droppedEmpty++;
        continue;
      }
      samples.add(new PreferenceLabeler.PromptSamples(p.prompt().text(),
          usable.stream().map(SampledPrompt.Continuation::text).toList()));
      double[] s = scores[i];
      rewards.add(usable.stream().mapToDouble(c -> s[c.sample()]).toArray());
    }
    return new Labels(PreferenceLabeler.labelScored(samples, rewards, rewardName), droppedEmpty);
  }

  /** The tokenizer of a model: the built-in one, or the folder's tokenizer files. */
  static String tokenizerSpec(String modelPath, Storage storage) {
    if (modelPath.equals(CausalLM.BUILTIN_TINY)) {
      return TokenizerFiles.BUILTIN;
    }
    if (!storage.exists(Storage.join(modelPath, "tokenizer.json"))) {
      throw new IllegalArgumentException("model folder " + modelPath + " has no tokenizer.json: generate needs the "
          + "model's tokenizer to encode prompts and decode continuations");
    }
    return modelPath;
  }

  /** Held-out prompts must come from other text than the training prompts. */
  private static void refuseSharedFiles(List<FileStatus> prompts, List<FileStatus> eval) {
    Set<String> training = new HashSet<>(paths(prompts));
    for (FileStatus f : eval) {
      if (training.contains(f.getPath().toString())) {
        throw new IllegalArgumentException("eval prompt text " + f.getPath() + " is also training prompt text: "
            + "evaluation prompts must be held out (e.g. --prompts .../train --eval-prompts .../heldout)");
      }
    }
  }

  private static List<String> paths(List<FileStatus> files) {
    return files.stream().map(f -> f.getPath().toString()).toList();
  }

  private static String files(List<FileStatus> files) {
    StringBuilder sb = new StringBuilder();
    for (FileStatus f : files) {
      sb.append(f.getPath()).append('|').append(f.getLen()).append('|').append(f.getModificationTime()).append('\n');
    }
    return sb.toString();
  }

  /** One prompt per line: index, text, token ids, source file and line. */
  static void writePrompts(Storage storage, String path, List<TextPrompts.Prompt> prompts) {
    try (OutputStream out = storage.create(path)) {
      for (TextPrompts.Prompt p : prompts) {
        out.write(Json.LINES.writeValueAsString(p).getBytes(StandardCharsets.UTF_8));
        out.write('\n');
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
    }
  }

  /** Prompts written by {@code generate} ({@code prompts.jsonl}, {@code eval_prompts.jsonl}), in file order. */
  public static List<TextPrompts.Prompt> readPrompts(Storage storage, String path) {
    List<TextPrompts.Prompt> out = new ArrayList<>();
    String[] lines = storage.readString(path).split("\n");
    for (int i = 0; i < lines.length; i++) {
      if (lines[i].isBlank()) {
        continue;
      }
      try {
        out.add(Json.LINES.readValue(lines[i], TextPrompts.Prompt.class));
      } catch (JsonProcessingException e) {
        throw new IllegalArgumentException(path + ", line " + (i + 1) + ": not a prompt: " + e.getOriginalMessage(), e);
      }
    }
    return out;
  }

  /** Every continuation with its reward; with a labeler, also its {@code labeler_score} ({@code labels} non-null). */
  private void writeSamples(String path, List<SampledPrompt> sampled, double[][] labels) {
    StructType schema = new StructType()
        .add("prompt_index", DataTypes.IntegerType, false)
        .add("prompt", DataTypes.StringType, false)
        .add("sample", DataTypes.IntegerType, false)
        .add("continuation", DataTypes.StringType, false)
        .add("reward", DataTypes.DoubleType, false)
        .add("tokens", DataTypes.IntegerType, false)
        .add("stopped", DataTypes.BooleanType, false)
        .add("logp", DataTypes.DoubleType, false);
    if (labels != null) {
      schema = schema.add("labeler_score", DataTypes.DoubleType, false);
    }
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < sampled.size(); i++) {
      SampledPrompt p = sampled.get(i);
      for (SampledPrompt.Continuation c : p.continuations()) {
        double logp = 0;
        for (double v : c.logProbs()) {
          logp += v;
        }
        rows.add(labels == null
            ? RowFactory.create(p.prompt().index(), p.prompt().text(), c.sample(), c.text(), c.reward(),
                c.tokens().length, c.stopped(), logp)
            : RowFactory.create(p.prompt().index(), p.prompt().text(), c.sample(), c.text(), c.reward(),
                c.tokens().length, c.stopped(), logp, labels[i][c.sample()]));
      }
    }
    spark.createDataFrame(rows, schema).coalesce(1).write().mode("overwrite").parquet(path);
  }

  /** The folder's manifest if it has this fingerprint and every file it lists is there. */
  private static Optional<GenerateManifest> complete(Storage storage, String dir, String fingerprint) {
    if (!storage.exists(Storage.join(dir, GenerateManifest.FILE))) {
      return Optional.empty();
    }
    GenerateManifest m;
    try {
      m = GenerateManifest.read(storage, dir);
    } catch (RuntimeException e) {
      LOG.info("generate: {} holds no usable manifest ({}); generating again", dir, e.getMessage());
      return Optional.empty();
    }
    if (!fingerprint.equals(m.fingerprint())) {
      LOG.info("generate: {} was generated from another model, prompts, reward or settings; generating again", dir);
      return Optional.empty();
    }
    for (String f : m.files().present()) {
      if (!storage.exists(Storage.join(dir, f))) {
        return Optional.empty();
      }
    }
    return Optional.of(m);
  }
}
