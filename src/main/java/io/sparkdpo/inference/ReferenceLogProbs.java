package io.sparkdpo.inference;

import io.sparkdpo.data.HadoopConfBroadcast;
import io.sparkdpo.data.ReferenceColumns;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.util.Arrays;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * A Spark ML {@link Transformer} that adds a causal language model's log-probabilities of each preference pair's
 * responses: for token-id columns prompt, chosen and rejected (array&lt;int&gt;), it appends the chosen and rejected
 * log-probs summed over response tokens (double; by default under TRL's names {@code ref_chosen_logps},
 * {@code ref_rejected_logps}) and the token counts (int). Usable from any Spark program, in a
 * Pipeline, and saved/loaded with its params ({@code write().save(path)}, {@link #load(String)}).
 *
 * <p>Each executor JVM loads the model once, lazily, and reuses it for every task ({@link ExecutorModels}, keyed by
 * the fingerprint the driver resolves here); rows are scored {@code sortWindow} at a time, batched by length within
 * {@code batchTokens}, chosen and rejected in one forward pass without an autograd graph; row order within each
 * partition is kept. {@code device} {@code gpu} takes the GPU Spark assigned the task
 * ({@code spark.task.resource.gpu.amount=1}).
 */
public final class ReferenceLogProbs extends Transformer implements DefaultParamsWritable {
  private final String uid;
  private final Param<String> promptCol;
  private final Param<String> chosenCol;
  private final Param<String> rejectedCol;
  private final Param<String> idCol;
  private final Param<String> chosenLogpCol;
  private final Param<String> rejectedLogpCol;
  private final Param<String> chosenTokensCol;
  private final Param<String> rejectedTokensCol;
  private final Param<String> model;
  private final LongParam modelSeed;
  private final Param<String> modelFingerprint;
  private final Param<String> adapter;
  private final Param<String> device;
  private final Param<String> dtype;
  private final IntParam batchTokens;
  private final IntParam sortWindow;
  private transient ExecutorStats stats;

  public ReferenceLogProbs() {
    this(Identifiable.randomUID("referenceLogProbs"));
  }

  public ReferenceLogProbs(String uid) {
    this.uid = uid;
    promptCol = new Param<>(this, "promptCol", "prompt token ids, array<int>");
    chosenCol = new Param<>(this, "chosenCol", "chosen response token ids (without the prompt), array<int>");
    rejectedCol = new Param<>(this, "rejectedCol", "rejected response token ids (without the prompt), array<int>");
    idCol = new Param<>(this, "idCol", "a column naming rows in error messages; empty: none");
    chosenLogpCol = new Param<>(this, "chosenLogpCol", "output: chosen log-prob summed over response tokens");
    rejectedLogpCol = new Param<>(this, "rejectedLogpCol", "output: rejected log-prob summed over response tokens");
    chosenTokensCol = new Param<>(this, "chosenTokensCol", "output: chosen response tokens scored");
    rejectedTokensCol = new Param<>(this, "rejectedTokensCol", "output: rejected response tokens scored");
    model = new Param<>(this, "model", "builtin:tiny or a Hugging Face model folder (local, hdfs:, s3a:)");
    modelSeed = new LongParam(this, "modelSeed", "initialisation seed of a builtin model");
    modelFingerprint = new Param<>(this, "modelFingerprint",
        "the model's expected fingerprint; empty: computed on the driver at transform");
    adapter = new Param<>(this, "adapter", "a PEFT adapter folder applied to the model; empty: none");
    device = new Param<>(this, "device", "cpu | gpu (the task's assigned GPU) | gpu:N");
    dtype = new Param<>(this, "dtype", "weights dtype: auto (config.json's torch_dtype) | float32 | bfloat16 | float16");
    batchTokens = new IntParam(this, "batchTokens", "padded tokens per forward pass", ParamValidators.gt(0));
    sortWindow = new IntParam(this, "sortWindow", "rows read ahead and sorted by length before batching",
        ParamValidators.gt(0));
    setDefault(promptCol, "prompt_ids");
    setDefault(chosenCol, "chosen_ids");
    setDefault(rejectedCol, "rejected_ids");
    setDefault(idCol, "pair_id");
    setDefault(chosenLogpCol, ReferenceColumns.CHOSEN_LOGPS);
    setDefault(rejectedLogpCol, ReferenceColumns.REJECTED_LOGPS);
    setDefault(chosenTokensCol, ReferenceColumns.CHOSEN_TOKENS);
    setDefault(rejectedTokensCol, ReferenceColumns.REJECTED_TOKENS);
    setDefault(model, CausalLM.BUILTIN_TINY);
    setDefault(modelSeed, CausalLM.DEFAULT_SEED);
    setDefault(modelFingerprint, "");
    setDefault(adapter, "");
    setDefault(device, "cpu");
    setDefault(dtype, "auto");
    setDefault(batchTokens, 8192);
    setDefault(sortWindow, 1024);
  }

  @Override
  public String uid() {
    return uid;
  }

  // Params are found by reflection over public no-argument methods returning a Param.
  public Param<String> promptCol() { return promptCol; }
  public Param<String> chosenCol() { return chosenCol; }
  public Param<String> rejectedCol() { return rejectedCol; }
  public Param<String> idCol() { return idCol; }
  public Param<String> chosenLogpCol() { return chosenLogpCol; }
  public Param<String> rejectedLogpCol() { return rejectedLogpCol; }
  public Param<String> chosenTokensCol() { return chosenTokensCol; }
  public Param<String> rejectedTokensCol() { return rejectedTokensCol; }
  public Param<String> model() { return model; }
  public LongParam modelSeed() { return modelSeed; }
  public Param<String> modelFingerprint() { return modelFingerprint; }
  public Param<String> adapter() { return adapter; }
  public Param<String> device() { return device; }
  public Param<String> dtype() { return dtype; }
  public IntParam batchTokens() { return batchTokens; }
  public IntParam sortWindow() { return sortWindow; }

  public ReferenceLogProbs setPromptCol(String v) { set(promptCol, v); return this; }
  public ReferenceLogProbs setChosenCol(String v) { set(chosenCol, v); return this; }
  public ReferenceLogProbs setRejectedCol(String v) { set(rejectedCol, v); return this; }
  public ReferenceLogProbs setIdCol(String v) { set(idCol, v); return this; }
  public ReferenceLogProbs setChosenLogpCol(String v) { set(chosenLogpCol, v); return this; }
  public ReferenceLogProbs setRejectedLogpCol(String v) { set(rejectedLogpCol, v); return this; }
  public ReferenceLogProbs setChosenTokensCol(String v) { set(chosenTokensCol, v); return this; }
  public ReferenceLogProbs setRejectedTokensCol(String v) { set(rejectedTokensCol, v); return this; }
  public ReferenceLogProbs setModel(String v) { set(model, v); return this; }
  public ReferenceLogProbs setModelSeed(long v) { set(modelSeed, v); return this; }
  public ReferenceLogProbs setModelFingerprint(String v) { set(modelFingerprint, v); return this; }
  public ReferenceLogProbs setAdapter(String v) { set(adapter, v); return this; }
  public ReferenceLogProbs setDevice(String v) { set(device, v); return this; }
  public ReferenceLogProbs setDtype(String v) { set(dtype, v); return this; }
  public ReferenceLogProbs setBatchTokens(int v) { set(batchTokens, v); return this; }
  public ReferenceLogProbs setSortWindow(int v) { set(sortWindow, v); return this; }

  /** Accumulators the next transform's tasks report to (not a param: not saved, not copied). */
  public ReferenceLogProbs withStats(ExecutorStats stats) {
    this.stats = stats;
    return this;
  }

  /**
   * The model (with the adapter, if set) as executors will load it: the fingerprint param, else resolved now on the
   * driver.
   */
  public ModelSpec modelSpec(Storage storage) {
    String fp = $(modelFingerprint);
    String a = $(adapter).isEmpty() ? null : $(adapter);
    return fp.isEmpty() ? ModelSpec.resolve($(model), a, (Long) $(modelSeed), $(device), $(dtype), storage)
        : new ModelSpec($(model), (Long) $(modelSeed), $(device), fp, $(dtype), a);
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType in = dataset.schema();
    StructType out = transformSchema(in);
    SparkSession spark = dataset.sparkSession();
    ModelSpec spec = modelSpec(new Storage(spark.sparkContext().hadoopConfiguration()));
    String id = $(idCol);
    PairScorer scorer = new PairScorer(spec, HadoopConfBroadcast.of(spark.sparkContext()),
        in.fieldIndex($(promptCol)), in.fieldIndex($(chosenCol)), in.fieldIndex($(rejectedCol)),
        !id.isEmpty() && Arrays.asList(in.fieldNames()).contains(id) ? in.fieldIndex(id) : -1,
        (Integer) $(batchTokens), (Integer) $(sortWindow), stats);
    return dataset.toDF().mapPartitions(scorer, Encoders.row(out));
  }

  @Override
  public StructType transformSchema(StructType schema) {
    for (Param<String> col : java.util.List.of(promptCol, chosenCol, rejectedCol)) {
      String name = $(col);
      if (!Arrays.asList(schema.fieldNames()).contains(name)) {
        throw new IllegalArgumentException(col.name() + ": the input has no column '" + name + "' (columns: "
            + String.join(", ", schema.fieldNames()) + ")");
      }
      DataType type = schema.apply(name).dataType();
      if (!(type instanceof ArrayType a) || !(a.elementType() == DataTypes.IntegerType
          || a.elementType() == DataTypes.LongType || a.elementType() == DataTypes.ShortType)) {
        throw new IllegalArgumentException(col.name() + ": column '" + name + "' must be an array of integer "
            + "token ids, not " + type.simpleString());
      }
    }
    StructType out = schema;
    for (Param<String> col : java.util.List.of(chosenLogpCol, rejectedLogpCol, chosenTokensCol, rejectedTokensCol)) {
      String name = $(col);
      if (Arrays.asList(out.fieldNames()).contains(name)) {
        throw new IllegalArgumentException(col.name() + ": output column '" + name + "' already exists; drop it "
            + "or choose another name");
      }
      boolean logp = col == chosenLogpCol || col == rejectedLogpCol;
      out = out.add(new StructField(name, logp ? DataTypes.DoubleType : DataTypes.IntegerType, false,
          org.apache.spark.sql.types.Metadata.empty()));
    }
    return out;
  }

  @Override
  public ReferenceLogProbs copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  /** Reads a transformer saved with {@code write().save(path)}. */
  public static MLReader<ReferenceLogProbs> read() {
    return new DefaultParamsReader<>();
  }

  public static ReferenceLogProbs load(String path) {
    return read().load(path);
  }
}
