package io.sparkdpo.inference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.RecordedSettings;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.ResponseEncoding;
import io.sparkdpo.eval.PreferenceLabeler;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code spark-dpo score}: a selector ({@link TextScorer}: a reward model, or a reward function as an oracle)
 * scores generated samples on executors. The input is {@code generate}'s {@code samples/} (Parquet) or JSON lines,
 * each row with a {@code prompt} and a {@code continuation} (or TRL's {@code completion}) string; its columns are
 * checked on the driver before any model runs. Rows keep the input order ({@code prompt_index}, {@code sample}
 * when the input has them). Writes {@code OUT/scores/} (the input's columns plus {@code score}, Parquet), with
 * {@code score.relabel} {@code OUT/pairs.jsonl} (TRL rows: per prompt the best-scored non-empty continuation chosen,
 * the worst rejected, ties and identical texts dropped and counted, as {@link PreferenceLabeler}), and
 * {@code OUT/manifest.json} last. The same input, selector and settings again: nothing to do.
 *
 * <p>Every row goes through the driver (read, tokenised, batched, written): sized for generated samples (thousands
 * of rows), not for a corpus.
 */
public final class ScoreJob {
  private static final Logger LOG = LoggerFactory.getLogger(ScoreJob.class);
  /** Bump when the output for the same inputs and settings changes. */
  static final int VERSION = 1;
  public static final String STAGE = "score";
  public static final String MANIFEST = "manifest.json";
  public static final String SCORES = "scores";
  public static final String PAIRS = "pairs.jsonl";
  public static final String SCORE_COLUMN = "score";
  static final List<String> CONTINUATION_COLUMNS = List.of("continuation", "completion");
  private static final String CORRUPT = "_corrupt_record";

  /**
   * @param upToDate the folder already held this output and nothing was scored
   * @param pairs pairs written ({@code relabel}), else 0
   */
  public record Result(boolean upToDate, String outputDir, String selector, String selectorKind, long rows,
      long pairs, JsonNode manifest) {}

  private final SparkSession spark;
  private final JobConfig config;

  public ScoreJob(SparkSession spark, JobConfig config) {
    this.spark = spark;
    this.config = config;
  }

  /** Scores {@code score.input} into {@code score.output_dir}. */
  public Result run() {
    if (config.score().input() == null) {
      throw new IllegalArgumentException("score needs samples to score: --input PATH (or score.input), e.g. "
          + "runs/pipeline/generated/samples");
    }
    return run(config.score().input(), config.score().outputDir());
  }

  public Result run(String input, String outputDir) {
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    S3aSettings.hadoopProperties(config.storage().s3()).forEach(hadoop::set);
    Storage storage = new Storage(hadoop);
    String out = ReferenceJob.stripSlash(outputDir);
    String in = ReferenceJob.stripSlash(input);
    List<FileStatus> files = inputFiles(storage, in);
    boolean parquet = files.stream().anyMatch(f -> f.getPath().getName().endsWith(".parquet"));
    Dataset<Row> df = parquet ? spark.read().parquet(Storage.qualify(in)) : spark.read().json(Storage.qualify(in));
    String continuation = checkColumns(df.schema(), in);
    TextScorer scorer = TextScorer.of(config, storage);
    boolean relabel = config.score().relabel();
    ObjectNode settings = (ObjectNode) RecordedSettings.section(config, "score");
    // batch_tokens stays: batches of other shapes may round differently in the last bit.
    settings.remove(List.of("input", "output_dir", "partitions", "device", "prompts", "best_of_n",
        "best_of_n_output_dir"));
    String fingerprint = PrepareJob.sha256("score-v" + VERSION, scorer.fingerprint(), settings.toString(),
        describe(files));
    JsonNode existing = upToDate(storage, out, fingerprint);
    if (existing != null) {
      LOG.info("score: {} is up to date (same input, selector and settings; fingerprint {}): nothing to do", out,
          fingerprint.substring(0, 16));
      return new Result(true, out, existing.path("selector").asText(), existing.path("selector_kind").asText(),
          existing.path("counts").path("rows").asLong(), existing.path("counts").path("pairs").asLong(), existing);
    }

    List<String> columns = Arrays.asList(df.columns());
    if (columns.contains("prompt_index") && columns.contains("sample")) {
      df = df.orderBy("prompt_index", "sample");
    }
    List<Row> rows = df.collectAsList();
    if (columns.contains(CORRUPT)) { // Spark's JSON reader keeps lines it cannot parse here
      for (int i = 0; i < rows.size(); i++) {
        Object bad = rows.get(i).get(rows.get(i).fieldIndex(CORRUPT));
        if (bad != null) {
          throw new IllegalArgumentException(in + ", row " + i + ": not a JSON object: " + abbreviate(bad.toString()));
        }
      }
    }
    List<String> prompts = new ArrayList<>(rows.size());
    List<String> continuations = new ArrayList<>(rows.size());
    for (int i = 0; i < rows.size(); i++) {
      prompts.add(text(rows.get(i), "prompt", in, i));
      continuations.add(text(rows.get(i), continuation, in, i));
    }
    LOG.info("score: {} rows of {} scored by {} ({})", rows.size(), in, scorer.label(), scorer.kind().jsonName());
    storage.delete(Storage.join(out, MANIFEST)); // first: a crash leaves an incomplete folder
    storage.delete(Storage.join(out, SCORES));
    storage.delete(Storage.join(out, PAIRS));
    storage.mkdirs(out);
    long start = System.nanoTime();
    TextScorer.Scored scored = scorer.score(spark, prompts, continuations, in);
    writeScores(df.schema(), rows, scored.scores(), Storage.qualify(Storage.join(out, SCORES)));

    ObjectNode counts = Json.MAPPER.createObjectNode();
    counts.put("rows", rows.size());
    if (relabel) {
      Relabelled r = relabel(rows, prompts, continuations, scored.scores(), columns.contains("prompt_index"),
          scorer.label());
      PreferenceLabeler.writeTrlJsonl(storage, Storage.join(out, PAIRS), r.result().pairs());
      counts.put("prompts", r.result().prompts() + r.droppedEmpty());
      counts.put("pairs", r.result().pairs().size());
      counts.put("dropped_ties", r.result().droppedTies());
      counts.put("dropped_identical_texts", r.result().droppedIdenticalTexts());
      counts.put("dropped_empty", r.droppedEmpty());
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    ObjectNode m = Json.MAPPER.createObjectNode();
    m.put("stage", STAGE);
    m.put("version", VERSION);
    m.put("created_at", Instant.now().toString());
    m.put("fingerprint", fingerprint);
    m.put("input", in);
    m.put("selector", scorer.label());
    m.put("selector_kind", scorer.kind().jsonName());
    m.put("selector_fingerprint", scorer.fingerprint());
    if (scorer.encoding() != null) {
      m.set("encoding", encoding(scorer.encoding(), config.score().prepared()));
    }
    m.set("counts", counts);
    ObjectNode fileNames = m.putObject("files");
    fileNames.put("scores", SCORES);
    fileNames.put("pairs", relabel ? PAIRS : null);
    ExecutorStats.Summary ex = scored.executors();
    ObjectNode executors = m.putObject("executors");
    executors.put("tasks", ex.tasks());
    executors.put("model_loads", ex.modelLoads());
    executors.put("jvms", ex.jvms().size());
    m.put("seconds", seconds);
    m.set("config", RecordedSettings.of(config, List.of("score", "prepare")));
    storage.writeJson(Storage.join(out, MANIFEST), m);
    LOG.info("score: {} rows in {} s; model loaded {} time(s) by {} task(s); wrote {}", rows.size(),
        String.format(java.util.Locale.ROOT, "%.1f", seconds), ex.modelLoads(), ex.tasks(), out);
    JsonNode written = Json.MAPPER.valueToTree(m);
    return new Result(false, out, scorer.label(), scorer.kind().jsonName(), rows.size(),
        counts.path("pairs").asLong(), written);
  }

  /** How the reward model's texts were tokenised, for the manifest. */
  static ObjectNode encoding(ResponseEncoding e, String prepared) {
    ObjectNode n = Json.MAPPER.createObjectNode();
    n.put("from", prepared != null ? "prepared folder " + prepared : "the prepare: section");
    n.put("template", e.template().template().templateName());
    n.put("template_fingerprint", e.template().template().fingerprint());
    n.put("tokenizer_fingerprint", e.tokenizer().fingerprint());
    n.put("add_eos", e.addEos());
    n.put("max_length", e.truncation().maxLength());
    n.put("max_prompt_length", e.truncation().maxPromptLength());
    n.put("fingerprint", e.fingerprint());
    return n;
  }

  /** The input's files (a file, or a folder's files but Spark's markers), so a changed input is noticed. */
  static List<FileStatus> inputFiles(Storage storage, String input) {
    if (!storage.exists(input)) {
      throw new IllegalArgumentException("score.input: " + input + " does not exist");
    }
    if (!storage.isDirectory(input)) {
      try {
        return List.of(storage.status(input));
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
    List<FileStatus> files = storage.list(input).stream().filter(FileStatus::isFile)
        .filter(f -> !f.getPath().getName().startsWith("_") && !f.getPath().getName().startsWith(".")).toList();
    if (files.isEmpty()) {
      throw new IllegalArgumentException("score.input: " + input + " holds no data files");
    }
    return files;
  }

  private static String describe(List<FileStatus> files) {
    StringBuilder sb = new StringBuilder();
    for (FileStatus f : files) {
      sb.append(f.getPath()).append('|').append(f.getLen()).append('|').append(f.getModificationTime()).append('\n');
    }
    return sb.toString();
  }

  /** {@code prompt} and a continuation column must be strings; returns the continuation column's name. */
  static String checkColumns(StructType schema, String input) {
    List<String> names = Arrays.asList(schema.fieldNames());
    requireString(schema, "prompt", input, names);
    for (String c : CONTINUATION_COLUMNS) {
      if (names.contains(c)) {
        requireString(schema, c, input, names);
        return c;
      }
    }
    throw new IllegalArgumentException(input + ": field 'continuation' (or 'completion') is missing; the rows have "
        + names + " (generate's samples/ or JSON lines with prompt and continuation)");
  }

  private static void requireString(StructType schema, String field, String input, List<String> names) {
    if (!names.contains(field)) {
      throw new IllegalArgumentException(input + ": field '" + field + "' is missing; the rows have " + names);
    }
    StructField f = schema.apply(field);
    if (!f.dataType().equals(DataTypes.StringType)) {
      throw new IllegalArgumentException(input + ": field '" + field + "' must be a string, is "
          + f.dataType().simpleString());
    }
  }

  private static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 77) + "...";
  }

  private static String text(Row row, String field, String input, int index) {
    Object v = row.get(row.fieldIndex(field));
    if (v == null) {
      throw new IllegalArgumentException(input + ", row " + index + ": field '" + field + "' is null");
    }
    return (String) v;
  }

  private void writeScores(StructType schema, List<Row> rows, double[] scores, String path) {
    if (Arrays.asList(schema.fieldNames()).contains(SCORE_COLUMN)) {
      schema = new StructType(Arrays.stream(schema.fields()).filter(f -> !f.name().equals(SCORE_COLUMN))
          .toArray(StructField[]::new));
    }
    StructType withScore = schema.add(SCORE_COLUMN, DataTypes.DoubleType, false);
    List<Row> out = new ArrayList<>(rows.size());
    for (int i = 0; i < rows.size(); i++) {
      Row r = rows.get(i);
      Object[] values = new Object[withScore.size()];
      for (int c = 0; c < schema.size(); c++) {
        values[c] = r.get(r.fieldIndex(schema.fields()[c].name()));
      }
      values[schema.size()] = scores[i];
      out.add(RowFactory.create(values));
    }
    spark.createDataFrame(out, withScore).coalesce(1).write().mode("overwrite").parquet(path);
  }

  /** Labelling's outcome, plus the prompts with fewer than two non-empty continuations. */
  record Relabelled(PreferenceLabeler.Result result, int droppedEmpty) {}

  /**
   * Per prompt ({@code prompt_index} when the input has it, else the prompt text), in order of first appearance,
   * its non-empty continuations in row order labelled by their scores.
   */
  static Relabelled relabel(List<Row> rows, List<String> prompts, List<String> continuations, double[] scores,
      boolean byIndex, String selector) {
    Map<Object, List<Integer>> groups = new LinkedHashMap<>();
    for (int i = 0; i < rows.size(); i++) {
      Object key = byIndex ? rows.get(i).get(rows.get(i).fieldIndex("prompt_index")) : prompts.get(i);
      groups.computeIfAbsent(key, k -> new ArrayList<>()).add(i);
    }
    List<PreferenceLabeler.PromptSamples> samples = new ArrayList<>();
    List<double[]> rewards = new ArrayList<>();
    int droppedEmpty = 0;
    for (List<Integer> g : groups.values()) {
      List<Integer> usable = g.stream().filter(i -> !continuations.get(i).isBlank()).toList();
      if (usable.size() < 2) {
        droppedEmpty++;
        continue;
      }
      samples.add(new PreferenceLabeler.PromptSamples(prompts.get(usable.get(0)),
          usable.stream().map(continuations::get).toList()));
      rewards.add(usable.stream().mapToDouble(i -> scores[i]).toArray());
    }
    return new Relabelled(PreferenceLabeler.labelScored(samples, rewards, selector), droppedEmpty);
  }

  /** The folder's manifest when it has this fingerprint and its files are there; else null. */
  static JsonNode upToDate(Storage storage, String dir, String fingerprint) {
    String path = Storage.join(dir, MANIFEST);
    if (!storage.exists(path)) {
      return null;
    }
    try {
      JsonNode m = Json.MAPPER.readTree(storage.readBytes(path));
      if (!STAGE.equals(m.path("stage").asText()) || !fingerprint.equals(m.path("fingerprint").asText())) {
        return null;
      }
      for (JsonNode f : m.path("files")) {
        if (f.isTextual() && !storage.exists(Storage.join(dir, f.asText()))) {
          return null;
        }
      }
      return m;
    } catch (IOException | RuntimeException e) {
      LOG.info("score: {} holds no usable manifest ({}); scoring again", dir, e.getMessage());
      return null;
    }
  }
}
