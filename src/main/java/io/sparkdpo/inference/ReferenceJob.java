package io.sparkdpo.inference;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.RecordedSettings;
import io.sparkdpo.config.ReferenceSettings;
import io.sparkdpo.data.HadoopConfBroadcast;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.data.PreparedShardWriter;
import io.sparkdpo.data.ReferenceColumns;
import io.sparkdpo.data.ShardChecksums;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.SerializableConfiguration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.Tuple2;

/**
 * The reference stage: the reference model's log-probs of every prepared pair, computed once by Spark executors and
 * stored with the data, so training never holds a second model. Reads a prepared folder, scores its shards with
 * {@link ReferenceLogProbs} (model loaded once per executor JVM), and writes the same shards (same file names, same
 * row order) with {@code ref_chosen_logps}, {@code ref_rejected_logps} (TRL's names) and their token counts, plus a
 * manifest naming the model's and the data's fingerprints. The same data and model again: the stored result is reused.
 */
public final class ReferenceJob {
  private static final Logger LOG = LoggerFactory.getLogger(ReferenceJob.class);
  /** Bump when the output for the same data and model changes, so old folders are recomputed. */
  static final int VERSION = 2; // 2: batches by content hash, not round-robin
  private static final String TMP = "_reference-tmp";
  private static final String SHARD = "_shard";
  private static final String ROW = "_row";

  /**
   * @param upToDate the folder already held these log-probs and nothing was computed
   * @param executors what the scoring tasks reported (empty when up to date)
   */
  public record Result(boolean upToDate, String outputDir, ReferenceManifest manifest,
      Optional<ExecutorStats.Summary> executors) {}

  private final SparkSession spark;
  private final JobConfig config;

  public ReferenceJob(SparkSession spark, JobConfig config) {
    this.spark = spark;
    this.config = config;
  }

  /** Where the referenced copy goes when no output is given: next to the prepared folder. */
  public static String defaultOutput(String dataDir) {
    return stripSlash(dataDir) + "-referenced";
  }

  public Result run(String dataDir, String outputDir) {
    ReferenceSettings s = config.reference();
    Configuration hadoop = spark.sparkContext().hadoopConfiguration();
    S3aSettings.hadoopProperties(config.storage().s3()).forEach(hadoop::set);
    Storage storage = new Storage(hadoop);
    String data = stripSlash(dataDir);
    String out = stripSlash(outputDir);
    if (Storage.qualify(data).equals(Storage.qualify(out))) {
      throw new IllegalArgumentException("reference output " + outputDir + " is the prepared folder itself; write "
          + "the referenced copy elsewhere (default " + defaultOutput(data) + ")");
    }
    PreparedManifest prepared = PreparedManifest.read(storage, data);
    String modelPath = s.modelOr(config.model());
    // model.adapter belongs to model.path: the reference is base + adapter unless reference.model names another.
    String adapter = s.model() == null ? config.model().adapter() : null;
    ModelSpec model = ModelSpec.resolve(modelPath, adapter, config.model().seed(), s.deviceOr(config.model()),
        s.dtype(), storage);
    requireSameTokenizer(prepared, data, modelPath, storage);
    String dataFingerprint = dataFingerprint(prepared);
    // float32 log-probs keep the fingerprint they had before dtypes existed; other dtypes give other log-probs.
    String fingerprint = model.dtype().equals("float32")
        ? PrepareJob.sha256("reference-v" + VERSION, dataFingerprint, model.fingerprint())
        : PrepareJob.sha256("reference-v" + VERSION, dataFingerprint, model.fingerprint(), model.dtype());

    Optional<ReferenceManifest> existing = completeWithFingerprint(storage, out, fingerprint);
    if (existing.isPresent()) {
      LOG.info("reference: {} is up to date (data {}, model {}): reusing the stored log-probs", out,
          dataFingerprint.substring(0, 16), model.shortFingerprint());
      return new Result(true, out, existing.get(), Optional.empty());
    }

    List<PreparedManifest.Shard> shards = new ArrayList<>();
    for (String split : List.of(PreparedManifest.TRAIN, PreparedManifest.EVAL)) {
      PreparedManifest.Split sp = prepared.splits().get(split);
      if (sp != null) {
        shards.addAll(sp.shards());
      }
    }
    ShardChecksums.verifyAll(spark, data, shards); // the input as prepare wrote it, or no reference at all
    storage.delete(Storage.join(out, PreparedManifest.FILE)); // first: a crash leaves an incomplete folder
    for (String sub : List.of(PreparedManifest.TRAIN, PreparedManifest.EVAL, "quarantine", TMP)) {
      storage.delete(Storage.join(out, sub));
    }
    storage.mkdirs(out);
    LOG.info("reference: scoring {} pairs in {} shard(s) of {} with {} (fingerprint {}) on {}",
        shards.stream().mapToLong(PreparedManifest.Shard::rows).sum(), shards.size(), data, modelPath,
        model.shortFingerprint(), model.device());

    long start = System.nanoTime();
    ExecutorStats stats = ExecutorStats.register(spark.sparkContext(), "reference");
    List<ShardWriter.Output> written = score(data, out, shards, model, s, stats);
    double seconds = (System.nanoTime() - start) / 1e9;
    ExecutorStats.Summary summary = stats.summary();

    ReferenceManifest manifest = publish(storage, data, out, prepared, shards, written, fingerprint,
        new Run(modelPath, model, dataFingerprint, data, s.batchTokens(), summary, seconds));
    manifest.write(storage, out);
    ReferenceManifest.Info r = manifest.reference();
    LOG.info("reference: {} pairs, {} step tokens in {} s ({} tokens/s); model loaded {} time(s) by {} task(s) in "
        + "{} JVM(s); wrote {}", r.pairs(), r.stepTokens(), String.format("%.1f", seconds),
        String.format("%.0f", r.tokensPerSecond()), r.modelLoads(), r.tasks(), r.executors(), out);
    return new Result(false, out, manifest, Optional.of(summary));
  }

  /** The Spark work: read every shard with its row numbers, score, regroup by shard in row order, write. */
  private List<ShardWriter.Output> score(String data, String out, List<PreparedManifest.Shard> shards,
      ModelSpec model, ReferenceSettings s, ExecutorStats stats) {
    Dataset<Row> all = null;
    for (int i = 0; i < shards.size(); i++) {
      // _metadata.row_index: the row's position in its file, whatever splits Spark reads it in.
      // Reference columns a shard already carries (e.g. kept from a TRL dataset) are recomputed, not kept twice.
      Dataset<Row> shard = spark.read().parquet(Storage.qualify(Storage.join(data, shards.get(i).file())))
          .drop(ReferenceColumns.ALL.toArray(new String[0]))
          .select(col("*"), lit(i).as(SHARD), col("_metadata.row_index").as(ROW));
      all = all == null ? shard : all.union(shard);
    }
    int partitions = s.partitions() > 0 ? s.partitions()
        : JavaSparkContext.fromSparkContext(spark.sparkContext()).defaultParallelism();
    ReferenceLogProbs transformer = new ReferenceLogProbs()
        .setModel(model.path()).setModelSeed(model.builtinSeed()).setModelFingerprint(model.fingerprint())
        .setAdapter(model.adapter() == null ? "" : model.adapter())
        .setDevice(model.device()).setDtype(model.dtype()).setBatchTokens(s.batchTokens()).setSortWindow(s.sortWindow())
        .withStats(stats);
    // Tasks get rows by a hash of the pair's content id, in shard and row order: which pairs share a forward batch
    // (and so the float rounding of their sums) then depends on the data alone. A round-robin repartition sorts
    // rows by their bytes first, so a different source path in the rows gave other batches and log-probs 1e-5 off.
    Dataset<Row> spread = all.repartition(partitions, col("pair_id")).sortWithinPartitions(col(SHARD), col(ROW));
    Dataset<Row> scored = transformer.transform(spread);
    StructType schema = scored.schema();
    int shardCol = schema.fieldIndex(SHARD);
    int rowCol = schema.fieldIndex(ROW);
    List<String> tmpFiles = shards.stream().map(sh -> Storage.qualify(Storage.join(Storage.join(out, TMP), sh.file())))
        .toList();
    Broadcast<SerializableConfiguration> conf = HadoopConfBroadcast.of(spark.sparkContext());
    ShardWriter writer = new ShardWriter(tmpFiles, columns(schema, transformer), conf);
    return scored.toJavaRDD()
        .mapToPair(r -> new Tuple2<>(ShardPartitioner.key(r.getInt(shardCol), r.getLong(rowCol)), r))
        .repartitionAndSortWithinPartitions(new ShardPartitioner(shards.size()))
        .mapPartitionsWithIndex(writer, true)
        .collect();
  }

  private static ShardWriter.Columns columns(StructType s, ReferenceLogProbs t) {
    return new ShardWriter.Columns(s.fieldIndex("pair_id"), s.fieldIndex("source_file"), s.fieldIndex("source_row"),
        s.fieldIndex("prompt_text"), s.fieldIndex("chosen_text"), s.fieldIndex("rejected_text"),
        s.fieldIndex(t.getOrDefault(t.promptCol())), s.fieldIndex(t.getOrDefault(t.chosenCol())),
        s.fieldIndex(t.getOrDefault(t.rejectedCol())), s.fieldIndex("truncated"),
        s.fieldIndex(t.getOrDefault(t.chosenLogpCol())), s.fieldIndex(t.getOrDefault(t.rejectedLogpCol())),
        s.fieldIndex(t.getOrDefault(t.chosenTokensCol())), s.fieldIndex(t.getOrDefault(t.rejectedTokensCol())),
        Arrays.asList(s.fieldNames()).contains(PreparedShardWriter.MARGIN)
            ? s.fieldIndex(PreparedShardWriter.MARGIN) : -1); // the reward margin travels on, for reward on this data
  }

  /** What the manifest's reference object needs besides the counts of the written shards. */
  private record Run(String modelPath, ModelSpec model, String dataFingerprint, String data, int batchTokens,
      ExecutorStats.Summary executors, double seconds) {}

  /** Moves the shards into place, copies the quarantine, checks every row arrived, and builds the manifest. */
  private static ReferenceManifest publish(Storage storage, String data, String out, PreparedManifest prepared,
      List<PreparedManifest.Shard> shards, List<ShardWriter.Output> written, String fingerprint, Run run) {
    Map<Integer, ShardWriter.Output> byShard = new TreeMap<>();
    written.forEach(o -> byShard.put(o.shard(), o));
    long pairs = 0;
    long responseTokens = 0;
    long stepTokens = 0;
    List<PreparedManifest.Shard> entries = new ArrayList<>();
    for (int i = 0; i < shards.size(); i++) {
      PreparedManifest.Shard in = shards.get(i);
      ShardWriter.Output o = byShard.get(i);
      if (o == null || o.written().rows() != in.rows() || o.written().tokens() != in.tokens()) {
        throw new IllegalStateException("reference lost track of " + in.file() + ": the prepared shard has "
            + in.rows() + " rows, " + (o == null ? "none" : o.written().rows()) + " were written");
      }
      String tmp = Storage.join(Storage.join(out, TMP), in.file());
      String target = Storage.join(out, in.file());
      storage.mkdirs(target.substring(0, target.lastIndexOf('/')));
      storage.rename(tmp, target);
      entries.add(new PreparedManifest.Shard(in.file(), o.written().rows(), o.written().tokens(),
          o.written().stepTokens(), o.written().bytes(), o.written().sha256()));
      pairs += o.written().rows();
      responseTokens += o.responseTokens();
      stepTokens += o.written().stepTokens();
    }
    storage.delete(Storage.join(out, TMP));
    for (PreparedManifest.QuarantineFile q : prepared.quarantine()) {
      // The referenced folder stands alone: every file its manifest lists is in it.
      storage.mkdirs(Storage.join(out, "quarantine"));
      storage.writeBytes(Storage.join(out, q.file()), storage.readBytes(Storage.join(data, q.file())));
    }
    Map<String, PreparedManifest.Split> splits = new TreeMap<>();
    int next = 0;
    for (String split : List.of(PreparedManifest.TRAIN, PreparedManifest.EVAL)) {
      PreparedManifest.Split sp = prepared.splits().get(split);
      if (sp != null) {
        List<PreparedManifest.Shard> mine = entries.subList(next, next + sp.shards().size());
        next += sp.shards().size();
        splits.put(split, new PreparedManifest.Split(sp.rows(), sp.tokens(), sp.stepTokens(), List.copyOf(mine)));
      }
    }
    PreparedManifest m = prepared;
    PreparedManifest referenced = new PreparedManifest(ReferenceManifest.STAGE, m.version(), Instant.now().toString(),
        fingerprint, m.input(), m.tokenizer(), m.template(),
        RecordedSettings.filter(m.config(), RecordedSettings.PREPARE), m.counts(), splits, m.quarantine(),
        m.histograms());
    ExecutorStats.Summary ex = run.executors();
    return new ReferenceManifest(referenced, new ReferenceManifest.Info(run.modelPath(), run.model().fingerprint(),
        run.dataFingerprint(), run.data(), run.model().device(), run.model().dtype(), run.batchTokens(), pairs,
        responseTokens,
        stepTokens, ex.modelLoads(), ex.tasks(), ex.jvms().size(), run.seconds(), run.model().adapter()));
  }

  /** The data's identity: the prepared fingerprint and the checksum of every shard, in order. */
  static String dataFingerprint(PreparedManifest m) {
    List<String> parts = new ArrayList<>(List.of("prepared", String.valueOf(m.fingerprint())));
    for (String split : List.of(PreparedManifest.TRAIN, PreparedManifest.EVAL)) {
      PreparedManifest.Split sp = m.splits().get(split);
      if (sp != null) {
        sp.shards().forEach(sh -> parts.add(sh.file() + "|" + sh.rows() + "|" + sh.sha256()));
      }
    }
    return PrepareJob.sha256(parts.toArray(new String[0]));
  }

  /**
   * Ids are only meaningful to the model whose tokenizer produced them: a model folder with tokenizer files (or the
   * built-in model) must have the tokenizer the data was prepared with.
   */
  private static void requireSameTokenizer(PreparedManifest m, String data, String modelPath, Storage storage) {
    String spec = modelPath.equals(CausalLM.BUILTIN_TINY) ? "builtin"
        : storage.exists(Storage.join(modelPath, "tokenizer.json")) ? modelPath : null;
    if (spec == null || m.tokenizer() == null || m.tokenizer().fingerprint() == null) {
      return;
    }
    String fp = TextTokenizer.load(spec, storage).fingerprint();
    if (!fp.equals(m.tokenizer().fingerprint())) {
      throw new IllegalArgumentException(data + " was tokenized with '" + m.tokenizer().spec() + "' (fingerprint "
          + m.tokenizer().fingerprint().substring(0, 16) + "), but model " + modelPath + " has another tokenizer "
          + "(fingerprint " + fp.substring(0, 16) + "): prepare the data with --set prepare.tokenizer=" + spec);
    }
  }

  /** The output's manifest if it has this fingerprint and every shard it lists is there with its size. */
  private static Optional<ReferenceManifest> completeWithFingerprint(Storage storage, String dir, String fingerprint) {
    if (!storage.exists(Storage.join(dir, PreparedManifest.FILE))) {
      return Optional.empty();
    }
    ReferenceManifest m;
    try {
      m = ReferenceManifest.read(storage, dir);
    } catch (RuntimeException e) {
      LOG.info("reference: {} holds no usable reference manifest ({}); recomputing", dir, e.getMessage());
      return Optional.empty();
    }
    if (!fingerprint.equals(m.data().fingerprint())) {
      LOG.info("reference: {} holds log-probs of another model or other data (model {}); recomputing", dir,
          m.reference().modelFingerprint().substring(0, 16));
      return Optional.empty();
    }
    for (PreparedManifest.Split split : m.data().splits().values()) {
      for (PreparedManifest.Shard shard : split.shards()) {
        try {
          if (storage.status(Storage.join(dir, shard.file())).getLen() != shard.bytes()) {
            return Optional.empty();
          }
        } catch (IOException e) {
          LOG.info("reference: {} is missing; recomputing", shard.file());
          return Optional.empty();
        }
      }
    }
    for (PreparedManifest.QuarantineFile q : m.data().quarantine()) {
      if (!storage.exists(Storage.join(dir, q.file()))) {
        return Optional.empty();
      }
    }
    return Optional.of(m);
  }

  static String stripSlash(String dir) {
    return dir.length() > 1 && dir.endsWith("/") ? dir.substring(0, dir.length() - 1) : dir;
  }
}
