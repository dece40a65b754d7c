package io.sparkdpo.inference;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.ScoreSettings;
import io.sparkdpo.data.HadoopConfBroadcast;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.ResponseEncoding;
import io.sparkdpo.data.TokenizerFiles;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.ModelFolder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * The selector of {@code score} and {@code best-of-n}, resolved on the driver: a reward model folder (what
 * {@code spark-dpo reward} exports; its config, tokenizer and fingerprint checked here, before any Spark job), whose
 * texts are tokenised as its training data was ({@link ResponseEncoding}), or a reward function used as an oracle.
 * {@link #score} sends the texts to executors in batches the driver cuts (sorted by length, then row; at most
 * {@code score.batch_tokens} padded tokens each), so the scores do not depend on the partitioning.
 */
public final class TextScorer {
  /** What selects: a trained reward model, or the ground-truth reward itself. */
  public enum Kind {
    REWARD_MODEL("reward_model"), ORACLE("oracle");

    private final String jsonName;

    Kind(String jsonName) {
      this.jsonName = jsonName;
    }

    /** {@code reward_model} or {@code oracle}, as manifests and best_of_n.json write it. */
    public String jsonName() {
      return jsonName;
    }
  }

  /** Scores in row order, and what the executors reported. */
  public record Scored(double[] scores, ExecutorStats.Summary executors) {}

  private final Kind kind;
  private final String label;
  private final String fingerprint;
  private final ModelSpec model;
  private final ResponseEncoding encoding;
  private final String rewardSpec;
  private final int batchTokens;
  private final int partitions;

  private TextScorer(Kind kind, String label, String fingerprint, ModelSpec model, ResponseEncoding encoding,
      String rewardSpec, int batchTokens, int partitions) {
    this.kind = kind;
    this.label = label;
    this.fingerprint = fingerprint;
    this.model = model;
    this.encoding = encoding;
    this.rewardSpec = rewardSpec;
    this.batchTokens = batchTokens;
    this.partitions = partitions;
  }

  /**
   * {@code score.model} when set (a reward model folder, or a reward function's name such as {@code afinn}: then an
   * oracle), else the oracle {@code score.reward} (else {@code evaluate.reward}).
   */
  public static TextScorer of(JobConfig config, Storage storage) {
    ScoreSettings s = config.score();
    return named(config, s.model() != null ? s.model() : s.rewardOr(config.evaluate()), storage);
  }

  /** A reward model folder, or a reward function's name (then an oracle); {@code score:} settings for the rest. */
  public static TextScorer named(JobConfig config, String modelOrReward, Storage storage) {
    ScoreSettings s = config.score();
    return namesRewardFunction(modelOrReward, storage)
        ? oracle(modelOrReward, s.batchTokens(), s.partitions(), storage)
        : rewardModel(config, modelOrReward, storage);
  }

  /** {@code afinn}, {@code lexicon:PATH} or a dotted class name that is not a path on the file system. */
  static boolean namesRewardFunction(String model, Storage storage) {
    return model.equals("afinn") || model.startsWith("lexicon:")
        || (!model.contains("/") && model.matches("[\\p{L}_$][\\p{L}\\p{N}_$]*(\\.[\\p{L}_$][\\p{L}\\p{N}_$]*)+")
            && !storage.exists(model));
  }

  /**
   * A reward model folder: refused unless its config.json is a one-label {@code *ForSequenceClassification} with a
   * tokenizer.json next to it. The texts are tokenised as {@code score.prepared}'s manifest records (else as the
   * {@code prepare:} section says).
   */
  public static TextScorer rewardModel(JobConfig config, String folder, Storage storage) {
    ScoreSettings s = config.score();
    if (folder.startsWith("builtin:")) {
      throw new IllegalArgumentException("score.model: " + folder + " is not a reward model folder; pass the folder "
          + "spark-dpo reward exported (RUN/model)");
    }
    if (!storage.exists(Storage.join(folder, ModelFolder.CONFIG))) {
      throw new IllegalArgumentException("score.model: " + folder + " holds no " + ModelFolder.CONFIG
          + ": not a model folder");
    }
    ModelConfig rm = ModelFolder.readConfig(storage, folder);
    if (!rm.scoresSequences()) {
      throw new IllegalArgumentException(Storage.join(folder, ModelFolder.CONFIG) + ": field architectures is "
          + rm.architecture() + ", not a reward model (*ForSequenceClassification with num_labels 1, as spark-dpo "
          + "reward exports it to RUN/model)");
    }
    if (!storage.exists(Storage.join(folder, "tokenizer.json"))) {
      throw new IllegalArgumentException("score.model: " + folder + " has no tokenizer.json: the reward model's "
          + "tokenizer is needed to tokenise the texts as it was trained");
    }
    TokenizerFiles tokenizer = TokenizerFiles.read(folder, storage);
    ResponseEncoding encoding = s.prepared() != null
        ? ResponseEncoding.ofPrepared(s.prepared(), tokenizer, storage, config.prepare())
        : ResponseEncoding.of(config.prepare(), tokenizer, storage);
    ModelSpec spec = ModelSpec.resolve(folder, config.model().seed(), s.deviceOr(config.model()), "float32", storage);
    String fp = PrepareJob.sha256("reward-model", spec.fingerprint(), encoding.fingerprint());
    return new TextScorer(Kind.REWARD_MODEL, folder, fp, spec, encoding, null, s.batchTokens(), s.partitions());
  }

  /** A reward function as the selector (labelled {@code oracle:<name>}); loaded here to fail early. */
  public static TextScorer oracle(String rewardSpec, int batchTokens, int partitions, Storage storage) {
    String name = RewardFunctions.load(rewardSpec, storage).name();
    return new TextScorer(Kind.ORACLE, "oracle:" + name, PrepareJob.sha256("oracle", rewardSpec, name), null, null,
        rewardSpec, batchTokens, partitions);
  }

  public Kind kind() {
    return kind;
  }

  /** The reward model folder, or {@code oracle:<reward name>}. */
  public String label() {
    return label;
  }

  /** What decides the scores: the reward model's weights and the text encoding, or the reward function. */
  public String fingerprint() {
    return fingerprint;
  }

  /** The reward function spec of an oracle (null for a reward model). */
  public String rewardSpec() {
    return rewardSpec;
  }

  /** The text encoding of a reward model (null for an oracle). */
  public ResponseEncoding encoding() {
    return encoding;
  }

  /**
   * Scores of {@code continuations.get(i)} after {@code prompts.get(i)} on executors; {@code source} names the input
   * in errors (a row the template cannot render).
   */
  public Scored score(SparkSession spark, List<String> prompts, List<String> continuations, String source) {
    if (prompts.size() != continuations.size()) {
      throw new IllegalArgumentException(prompts.size() + " prompts but " + continuations.size() + " continuations");
    }
    List<ScoreBatch> batches = kind == Kind.REWARD_MODEL
        ? tokenBatches(encoding.encode(prompts, continuations, source), batchTokens)
        : textBatches(prompts, continuations);
    double[] scores = new double[prompts.size()];
    if (batches.isEmpty()) {
      return new Scored(scores, new ExecutorStats.Summary(0, 0, List.of()));
    }
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    int parts = Math.min(batches.size(), partitions > 0 ? partitions : jsc.defaultParallelism());
    ExecutorStats stats = ExecutorStats.register(spark.sparkContext(), "score");
    BatchScorer scorer = new BatchScorer(model, rewardSpec, HadoopConfBroadcast.of(spark.sparkContext()), stats);
    boolean[] seen = new boolean[scores.length];
    for (ScoreBatch.Scored b : jsc.parallelize(batches, parts).mapPartitions(scorer).collect()) {
      for (int i = 0; i < b.rows().length; i++) {
        double v = b.scores()[i];
        if (!Double.isFinite(v)) {
          throw new IllegalStateException(label + " scored row " + b.rows()[i] + " of " + source + " as " + v
              + "; scores must be finite");
        }
        scores[b.rows()[i]] = v;
        seen[b.rows()[i]] = true;
      }
    }
    for (int i = 0; i < seen.length; i++) {
      if (!seen[i]) {
        throw new IllegalStateException("row " + i + " of " + source + " came back without a score");
      }
    }
    return new Scored(scores, stats.summary());
  }

  /**
   * Rows sorted by length (then index) and grown into batches while the padded batch stays within
   * {@code batchTokens}; a row longer than that runs alone.
   */
  static List<ScoreBatch> tokenBatches(List<int[]> ids, int batchTokens) {
    Integer[] order = new Integer[ids.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, Comparator.comparingInt((Integer i) -> ids.get(i).length).thenComparingInt(i -> i));
    List<ScoreBatch> out = new ArrayList<>();
    List<Integer> current = new ArrayList<>();
    int longest = 0;
    for (int i : order) {
      int len = Math.max(longest, ids.get(i).length);
      if (!current.isEmpty() && (long) (current.size() + 1) * len > batchTokens) {
        out.add(tokenBatch(current, ids));
        current.clear();
        len = ids.get(i).length;
      }
      current.add(i);
      longest = len;
    }
    if (!current.isEmpty()) {
      out.add(tokenBatch(current, ids));
    }
    return out;
  }

  private static ScoreBatch tokenBatch(List<Integer> rows, List<int[]> ids) {
    return new ScoreBatch(rows.stream().mapToInt(Integer::intValue).toArray(),
        rows.stream().map(ids::get).toArray(int[][]::new), null, null);
  }

  /** A reward function scores text by text: batches of 256 rows in input order. */
  private static List<ScoreBatch> textBatches(List<String> prompts, List<String> continuations) {
    List<ScoreBatch> out = new ArrayList<>();
    for (int from = 0; from < prompts.size(); from += 256) {
      int to = Math.min(prompts.size(), from + 256);
      int[] rows = new int[to - from];
      for (int i = 0; i < rows.length; i++) {
        rows[i] = from + i;
      }
      out.add(new ScoreBatch(rows, null, prompts.subList(from, to).toArray(String[]::new),
          continuations.subList(from, to).toArray(String[]::new)));
    }
    return out;
  }
}
