package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.PrepareSettings;
import io.sparkdpo.config.PrepareSettings.Format;
import io.sparkdpo.config.RecordedSettings;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The prepare stage: read preference pairs (JSONL, JSON arrays, Parquet, Hugging Face dataset folders; any Hadoop
 * file system; or tables of the session's catalog, {@code table:NAME}), validate,
 * template, tokenize, truncate, split train/eval by prompt hash, and write token-balanced Parquet shards, the
 * quarantine and the manifest. Every input row ends up kept or quarantined; only unusable inputs or settings
 * fail the job. Re-running with the same inputs and settings on a complete folder does nothing.
 */
public final class PrepareJob {
  private static final Logger LOG = LoggerFactory.getLogger(PrepareJob.class);
  /** Bump when the output for the same inputs and settings changes, so old folders are rebuilt. */
  static final int VERSION = 1;
  /**
   * The number of training workers shards default to when prepare.num_shards is 0. There is no train section yet;
   * when there is, the command passes its worker count to {@link #shardCount} instead.
   */
  public static final int DEFAULT_TRAINING_WORKERS = 1;
  private static final String TMP = "_prepare-tmp";

  /** @param upToDate true when the folder already held this exact preparation and nothing was done */
  public record Result(boolean upToDate, String outputDir, PreparedManifest manifest) {}

  private final SparkSession spark;
  private final JobConfig config;
  private final int trainingWorkers;
  private long maxSplitBytes = -1;

  public PrepareJob(SparkSession spark, JobConfig config, int trainingWorkers) {
    this.spark = spark;
    this.config = config;
    this.trainingWorkers = trainingWorkers;
  }

  /** Shards per split: prepare.num_shards, or one per training worker when it is 0. */
  public static int shardCount(PrepareSettings settings, int trainingWorkers) {
    return settings.numShards() > 0 ? settings.numShards() : Math.max(1, trainingWorkers);
  }

  /** Caps the bytes of a JSON-lines input split (default: enough splits to keep every core busy). */
  PrepareJob withMaxSplitBytes(long bytes) {
    this.maxSplitBytes = bytes;
    return this;
  }

  public Result run(List<String> inputs, String outputDir) {
    PrepareSettings s = config.prepare();
    Storage storage = new Storage(hadoopConfiguration());
    String dir = stripSlash(outputDir);

    List<String> tableInputs = inputs.stream().filter(InputTables::isTable).toList();
    List<String> pathInputs = inputs.stream().filter(in -> !InputTables.isTable(in)).toList();
    if (inputs.isEmpty()) {
      throw new IllegalArgumentException("no input given: pass --input PATH|table:NAME... or set prepare.input");
    }
    InputFiles inputFiles = new InputFiles(storage, s.datasetSplit());
    List<InputFile> files = new ArrayList<>(pathInputs.isEmpty() ? List.of() : inputFiles.resolve(pathInputs));
    refuseOutputInsideInput(pathInputs, dir);
    files.addAll(new InputTables(spark).resolve(tableInputs)); // checks every table exists, then digests them
    TokenizerChoice choice = TokenizerChoice.choose(s.tokenizer(), config.model().path(), storage);
    LOG.info("prepare: tokenizer {} ({})", choice.spec(), choice.reason());
    TokenizerFiles tokenizerFiles = TokenizerFiles.read(choice.spec(), storage);
    TextTokenizer tokenizer = TextTokenizer.of(tokenizerFiles);
    TokenizerChoice.requireFitsModel(tokenizer, config.model().path(), storage);
    if (s.addEos() && !tokenizer.hasEos()) {
      throw new IllegalArgumentException("prepare.add_eos is true but tokenizer '" + choice.spec()
          + "' defines no eos_token in tokenizer_config.json; add one or set prepare.add_eos=false");
    }
    TemplateSpec template = TemplateSpec.resolve(s.template(), tokenizer, storage, TemplateLimits.of(s));
    int shards = shardCount(s, trainingWorkers);
    // The manifest records the settings prepare's output depends on, never the whole configuration (Spark conf).
    JsonNode redacted = RecordedSettings.of(config, RecordedSettings.PREPARE);
    String inputFingerprint = inputFingerprint(files);
    // input and dataset_split only choose what is read, and what is read is fingerprinted input by input.
    com.fasterxml.jackson.databind.node.ObjectNode outputSettings = redacted.get("prepare").deepCopy();
    outputSettings.remove(List.of("input", "dataset_split"));
    String fingerprint = sha256("prepare-v" + VERSION, inputFingerprint, tokenizerFiles.fingerprint(),
        template.template().fingerprint(), outputSettings.toString(), Integer.toString(shards));
    long bytes = files.stream().mapToLong(InputFile::size).sum();
    LOG.info("prepare: {} input file(s), {} bytes, {} table(s); tokenizer {}, template {}, {} shard(s) per split",
        files.stream().filter(f -> f.rows() == null).count(), bytes, files.stream().filter(f -> f.rows() != null).count(), choice.spec(),
        template.template().templateName(), shards);

    Optional<PreparedManifest> existing = completeWithFingerprint(storage, dir, fingerprint);
    if (existing.isPresent()) {
      LOG.info("prepare: {} is up to date (fingerprint {}): same inputs and settings, nothing to do", dir,
          fingerprint.substring(0, 16));
      requireFewEnoughQuarantined(existing.get(), s, dir); // a rerun of a failed preparation fails again
      return new Result(true, dir, existing.get());
    }

    Map<String, Format> formats = formats(files, s.format(), new RawInputs(spark, inputFiles, s.maxRowBytes()));
    clear(storage, dir);
    PrepareSpec spec = new PrepareSpec(tokenizerFiles, template,
        new Truncation(s.maxLength(), s.maxPromptLength(), s.truncationMode() == PrepareSettings.TruncationMode.KEEP_END,
            s.longPrompt() == PrepareSettings.LongPrompt.QUARANTINE),
        s.addEos(), s.evalFraction(), s.seed(), s.format(), formats, s.maxRowBytes());
    PreparePipeline.Outputs out = new PreparePipeline(spark, spec, shards, s.maxLength(), Storage.join(Storage.qualify(dir), TMP))
        .run(new RawInputs(spark, inputFiles, s.maxRowBytes()).read(files, splitBytes(bytes)), files.size());

    PreparedManifest manifest = publish(storage, dir, out, files, inputFiles.skipped(), formats, inputFingerprint,
        fingerprint, tokenizer, choice, template, redacted);
    manifest.write(storage, dir);
    PreparedManifest.Counts c = manifest.counts();
    LOG.info("prepare: read {} rows: kept {} (train {}, eval {}; {} truncated), quarantined {} {}; wrote {}",
        c.read(), c.kept(), manifest.splits().get(PreparedManifest.TRAIN).rows(),
        manifest.splits().get(PreparedManifest.EVAL).rows(), c.truncated(), c.quarantined(), c.reasons(), dir);
    long margins = out.stats().stream().mapToLong(PreparePipeline.PartitionStats::margins).sum();
    if (margins > 0) {
      LOG.info("prepare: {} of {} kept rows carry a reward margin (TRL's margin field); the shards have a {} column "
          + "(0 where a row has none)", margins, c.kept(), PreparedShardWriter.MARGIN);
    }
    requireFewEnoughQuarantined(manifest, s, dir);
    return new Result(false, dir, manifest);
  }

  /**
   * Fails (after the quarantine and manifest are written, so they can be read) when more than
   * prepare.max_quarantine_fraction of the rows were quarantined, or when no row was kept at all.
   */
  static void requireFewEnoughQuarantined(PreparedManifest m, PrepareSettings s, String dir) {
    PreparedManifest.Counts c = m.counts();
    double fraction = c.read() == 0 ? 1.0 : (double) c.quarantined() / c.read();
    if (c.kept() == 0 || fraction > s.maxQuarantineFraction()) {
      throw new IllegalStateException(String.format("prepare: quarantined %d of %d rows (%.1f%%%s), %s; see %s/"
          + "quarantine/ and %s/%s, fix the input or the settings (prepare.format, prepare.template), or raise "
          + "prepare.max_quarantine_fraction", c.quarantined(), c.read(), 100 * fraction,
          c.reasons().isEmpty() ? "" : ": " + c.reasons(), c.kept() == 0 ? "no row was kept"
              : "more than prepare.max_quarantine_fraction (" + s.maxQuarantineFraction() + ")",
          dir, dir, PreparedManifest.FILE));
    }
  }

  /**
   * The session's Hadoop configuration with storage.s3 applied, then the user's own {@code spark.hadoop.*}
   * settings on top (as a new session would have them), so executors and driver see the same file systems.
   */
  private Configuration hadoopConfiguration() {
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    S3aSettings.hadoopProperties(config.storage().s3()).forEach(hadoop::set);
    config.spark().conf().forEach((k, v) -> {
      if (k.startsWith("spark.hadoop.")) {
        hadoop.set(k.substring("spark.hadoop.".length()), v);
      }
    });
    return hadoop;
  }

  /** Writing into an input folder would make the next run read its own shards. */
  private static void refuseOutputInsideInput(List<String> inputs, String dir) {
    String out = Storage.qualify(dir) + "/";
    for (String input : inputs) {
      String in = stripSlash(Storage.qualify(input)) + "/";
      if (out.startsWith(in)) {
        throw new IllegalArgumentException("output folder " + dir + " is inside input " + input
            + "; write it elsewhere, or the next run would read its own shards");
      }
    }
  }

  private long splitBytes(long totalBytes) {
    if (maxSplitBytes > 0) {
      return maxSplitBytes;
    }
    int cores = JavaSparkContext.fromSparkContext(spark.sparkContext()).defaultParallelism();
    return Math.max(4L << 20, totalBytes / (2L * cores) + 1);
  }

  private Map<String, Format> formats(List<InputFile> files, Format configured, RawInputs reader) {
    Map<String, Format> formats = new TreeMap<>();
    for (InputFile f : files) {
      Format format = configured != Format.AUTO ? configured : FormatDetector.detectFile(f.path(), reader.sample(f));
      formats.put(f.path(), format);
      if (configured == Format.AUTO) {
        LOG.info("prepare: {} looks like {}", f.path(), format == Format.AUTO
            ? "no format (no readable rows at its start)" : ConfigLoader.yamlName(format));
      }
    }
    return formats;
  }

  /** Moves the written files to their final names, checks the accounting and builds the manifest. */
  private PreparedManifest publish(Storage storage, String dir, PreparePipeline.Outputs out, List<InputFile> files,
      List<SkippedFile> skipped, Map<String, Format> formats, String inputFingerprint, String fingerprint, TextTokenizer tokenizer,
      TokenizerChoice choice, TemplateSpec template, JsonNode redacted) {
    long read = 0;
    long kept = 0;
    long truncated = 0;
    Map<String, Long> reasons = new TreeMap<>();
    for (PreparePipeline.PartitionStats p : out.stats()) {
      read += p.read();
      kept += p.kept();
      truncated += p.truncated();
      p.reasons().forEach((k, v) -> reasons.merge(k, v, Long::sum));
    }
    long quarantined = reasons.values().stream().mapToLong(Long::longValue).sum();

    Map<String, PreparedManifest.Split> splits = new TreeMap<>();
    Map<String, Map<String, LengthHistogram>> histograms = new TreeMap<>();
    int maxLength = config.prepare().maxLength();
    long shardRows = 0;
    for (String split : List.of(PreparedManifest.TRAIN, PreparedManifest.EVAL)) {
      List<PreparePipeline.ShardOutput> mine = out.shards().stream().filter(o -> o.eval() == split.equals(PreparedManifest.EVAL))
          .sorted((a, b) -> Integer.compare(a.shard(), b.shard())).toList();
      List<PreparedManifest.Shard> entries = new ArrayList<>();
      LengthHistograms h = new LengthHistograms(maxLength);
      long rows = 0;
      long tokens = 0;
      long stepTokens = 0;
      for (PreparePipeline.ShardOutput o : mine) {
        String name = String.format("%s/shard-%05d.parquet", split, o.shard());
        storage.mkdirs(Storage.join(dir, split));
        storage.rename(o.file(), Storage.join(dir, name));
        PreparedShardWriter.Written w = o.written();
        entries.add(new PreparedManifest.Shard(name, w.rows(), w.tokens(), w.stepTokens(), w.bytes(), w.sha256()));
        rows += w.rows();
        tokens += w.tokens();
        stepTokens += w.stepTokens();
        h.merge(w.histograms());
      }
      shardRows += rows;
      splits.put(split, new PreparedManifest.Split(rows, tokens, stepTokens, entries));
      histograms.put(split, h.toMap());
    }
    List<PreparedManifest.QuarantineFile> qfiles = new ArrayList<>();
    Map<String, Long> writtenReasons = new TreeMap<>();
    long quarantineRows = 0;
    for (PreparePipeline.QuarantineOutput q : out.quarantine().stream().sorted((a, b) -> Integer.compare(a.partition(), b.partition())).toList()) {
      if (q.file() == null) {
        continue;
      }
      String name = String.format("quarantine/part-%05d.jsonl", q.partition());
      storage.mkdirs(Storage.join(dir, "quarantine"));
      storage.rename(q.file(), Storage.join(dir, name));
      qfiles.add(new PreparedManifest.QuarantineFile(name, q.rows()));
      quarantineRows += q.rows();
      q.reasons().forEach((k, v) -> writtenReasons.merge(k, v, Long::sum));
    }
    storage.delete(Storage.join(dir, TMP));
    if (read != kept + quarantined || shardRows != kept || quarantineRows != quarantined
        || !writtenReasons.equals(reasons)) {
      throw new IllegalStateException("prepare lost track of rows: read " + read + ", kept " + kept + " (written "
          + shardRows + "), quarantined " + quarantined + " (written " + quarantineRows + ")");
    }
    Map<String, String> formatNames = new LinkedHashMap<>();
    formats.forEach((f, fmt) -> formatNames.put(f, ConfigLoader.yamlName(fmt)));
    return new PreparedManifest(PreparedManifest.STAGE, VERSION, Instant.now().toString(), fingerprint,
        new PreparedManifest.Input(files, formatNames, inputFingerprint, skipped.size(), skipped),
        new PreparedManifest.TokenizerInfo(choice.spec(), tokenizer.fingerprint(), tokenizer.vocabSize(),
            idOrNone(tokenizer::eosId), idOrNone(tokenizer::padId), idOrNone(tokenizer::bosId), config.prepare().tokenizer(),
            choice.reason()),
        new PreparedManifest.TemplateInfo(template.template().templateName(), template.template().fingerprint()),
        redacted, new PreparedManifest.Counts(read, kept, quarantined, truncated, reasons), splits, qfiles,
        histograms);
  }

  /** A special token's id, or -1 when the tokenizer does not define it. */
  private static int idOrNone(java.util.function.IntSupplier id) {
    try {
      return id.getAsInt();
    } catch (IllegalStateException e) {
      return -1;
    }
  }

  /** The folder's manifest if it has this fingerprint and every file it lists is there with its size and sha256. */
  private static Optional<PreparedManifest> completeWithFingerprint(Storage storage, String dir, String fingerprint) {
    if (!storage.exists(Storage.join(dir, PreparedManifest.FILE))) {
      return Optional.empty();
    }
    PreparedManifest m;
    try {
      m = PreparedManifest.read(storage, dir);
    } catch (RuntimeException e) {
      LOG.warn("prepare: existing {} cannot be used ({}); rewriting", PreparedManifest.FILE, e.getMessage());
      return Optional.empty();
    }
    if (!fingerprint.equals(m.fingerprint())) {
      LOG.info("prepare: {} holds a different preparation (inputs or settings changed); rewriting", dir);
      return Optional.empty();
    }
    for (PreparedManifest.Split split : m.splits().values()) {
      for (PreparedManifest.Shard shard : split.shards()) {
        String problem = ShardChecksums.mismatch(storage, Storage.join(dir, shard.file()), shard.bytes(),
            shard.sha256());
        if (problem != null) {
          LOG.warn("prepare: {} is {}; rewriting", shard.file(), problem);
          return Optional.empty();
        }
      }
    }
    for (PreparedManifest.QuarantineFile q : m.quarantine()) {
      if (!storage.exists(Storage.join(dir, q.file()))) {
        return Optional.empty();
      }
    }
    return Optional.of(m);
  }

  /** Removes what an earlier prepare wrote (manifest first, so a crash leaves an incomplete folder). */
  private static void clear(Storage storage, String dir) {
    storage.delete(Storage.join(dir, PreparedManifest.FILE));
    for (String sub : List.of(PreparedManifest.TRAIN, PreparedManifest.EVAL, "quarantine", TMP)) {
      storage.delete(Storage.join(dir, sub));
    }
    storage.mkdirs(dir);
  }

  private static String inputFingerprint(List<InputFile> files) {
    List<String> parts = new ArrayList<>();
    for (InputFile f : files) {
      String part = f.path() + "|" + f.size() + "|" + f.modified() + "|" + (f.etag() == null ? "" : f.etag());
      parts.add(f.digest() == null ? part : part + "|" + f.rows() + "|" + f.digest()); // files: as before
    }
    return sha256(parts.toArray(new String[0]));
  }

  /** sha256 of the parts, each length-prefixed (so ("ab", "c") and ("a", "bc") differ); lowercase hex. */
  public static String sha256(String... parts) {
    var md = PreferencePair.sha256();
    for (String p : parts) {
      byte[] b = p.getBytes(StandardCharsets.UTF_8);
      md.update(Integer.toString(b.length).getBytes(StandardCharsets.US_ASCII));
      md.update((byte) ':');
      md.update(b);
    }
    return HexFormat.of().formatHex(md.digest());
  }

  private static String stripSlash(String dir) {
    return dir.length() > 1 && dir.endsWith("/") ? dir.substring(0, dir.length() - 1) : dir;
  }
}
