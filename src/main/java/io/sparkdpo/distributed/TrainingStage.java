package io.sparkdpo.distributed;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.MixedPrecision;
import io.sparkdpo.config.ModelSettings;
import io.sparkdpo.config.OptimizationSettings;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.config.TrainSettings;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.io.FolderLease;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.ModelFolder;
import io.sparkdpo.model.AdapterFolder;
import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.PreparedData;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.StepPlan;
import io.sparkdpo.train.TextWindows;
import io.sparkdpo.train.TrainerCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver side of the {@code sft}, {@code train} and {@code reward} stages: check the data against the model, plan
 * shards and steps, run the barrier stage of {@code workers} DJL replicas through {@link BarrierStageRunner} (W = 1
 * too: one barrier task, in the driver JVM on a {@code local} master), and export the final checkpoint's model as
 * {@code RUN/model} in Hugging Face layout. Running it again on the same run folder resumes from the newest valid
 * checkpoint; on a finished run it only re-exports. The run folder has one writer: the stage holds its {@link
 * FolderLease} from the first write (run.json) to the exported model.
 */
public final class TrainingStage {
  private static final Logger LOG = LoggerFactory.getLogger(TrainingStage.class);
  public static final String MODEL = "model";
  /** A LoRA run's final adapter (PEFT layout), next to {@link #MODEL} (the base with it merged). */
  public static final String ADAPTER = "adapter";
  public static final String RUN_FILE = "run.json";
  /**
   * Settings that change when a run logs, saves or retries, not what it computes: they may change on a resume.
   * {@code gradient_checkpointing} trades memory for compute on the same maths (equal up to float rounding), so a run
   * that ran out of memory can resume with it on.
   */
  private static final Set<String> FREE_ON_RESUME = Set.of("maxAttempts", "loggingSteps", "evalSteps", "saveSteps",
      "saveTotalLimit", "outputDir", "checksumSteps", "faultInjection", "perDeviceEvalBatchSize", "device",
      "saveDtype", "allreduceBucketMb", "ringConnectTimeoutS", "ringIoTimeoutS", "saveTimeoutS", "ringPeerTimeoutS",
      "gradientCheckpointing", "ringHandshakeTimeoutS", "restartOnCorruptCheckpoints", "leaseTimeoutS",
      "metricForBestModel", "greaterIsBetter");

  /** What to train on: a prepared (or referenced) folder, or plain text files (SFT). */
  public record Inputs(String preparedDir, List<String> text, List<String> evalText) {
    public static Inputs prepared(String dir) {
      return new Inputs(dir, List.of(), List.of());
    }

    public static Inputs text(List<String> train, List<String> eval) {
      if (train.isEmpty()) {
        throw new IllegalArgumentException("no text to train on");
      }
      return new Inputs(null, List.copyOf(train), List.copyOf(eval));
    }
  }

  /**
   * A finished stage: where its model and metrics are, and how it went. {@code upToDate}: the run folder already held
   * this run, finished and exported, and nothing ran ({@code outcome} is then null).
   */
  public record Result(String runDir, String modelDir, long steps, RunOutcome outcome, Map<String, Object> lastEval,
                       boolean upToDate) {}

  private final SparkSession spark;
  private final JobConfig config;
  private final SessionSpec.Stage stage;
  private RunMonitor.ProgressFactory progress = io.sparkdpo.train.ConsoleProgress::onStderr;
  private boolean replaceOtherRun;

  public TrainingStage(SparkSession spark, JobConfig config, SessionSpec.Stage stage) {
    this.spark = spark;
    this.config = config;
    this.stage = stage;
  }

  public TrainingStage withProgress(RunMonitor.ProgressFactory factory) {
    this.progress = factory;
    return this;
  }

  /**
   * A run folder that holds a run with other settings is cleared (run.json, checkpoints, metrics, model, fault
   * markers; SFT's text windows keep their own fingerprint) and trained from scratch instead of refused: for a caller
   * that owns its run folders, such as the pipeline after an upstream stage changed.
   */
  public TrainingStage replacingOtherRun() {
    this.replaceOtherRun = true;
    return this;
  }

  private OptimizationSettings settings() {
    return switch (stage) {
      case SFT -> config.sft();
      case DPO -> config.train();
      case REWARD -> config.reward();
    };
  }

  /** The config section of this stage's settings. */
  private String section() {
    return switch (stage) {
      case SFT -> "sft";
      case DPO -> "train";
      case REWARD -> "reward";
    };
  }

  public Result run(Inputs inputs) {
    Storage storage = new Storage(spark.sparkContext().hadoopConfiguration());
    OptimizationSettings s = settings();
    String runDir = Storage.qualify(s.outputDir());
    String modelPath = config.model().path();
    int workers = s.workers();
    // The models the workers will load: a config they would refuse fails here, once, before any Spark job.
    ModelConfig modelConfig = ModelFolder.configOf(storage, modelPath);
    if (stage == SessionSpec.Stage.REWARD) {
      modelConfig.asSequenceClassifier(); // a causal LM gains a score head: refused here if it has no pad/EOS token
    }
    checkPeft(storage);
    String referenceDtype = null;
    if (stage == SessionSpec.Stage.DPO) {
      referenceDtype = referenceDtype(config, storage);
    }

    String runId = stage.name().toLowerCase() + "-" + UUID.randomUUID().toString().substring(0, 8);
    // One writer per run folder from here on: run.json, data windows, checkpoints, metrics, the exported model.
    try (FolderLease lease = FolderLease.acquire(storage, runDir, runId, Duration.ofSeconds(s.leaseTimeoutS()))) {
      return run(inputs, storage, runDir, runId, referenceDtype, lease);
    }
  }

  private Result run(Inputs inputs, Storage storage, String runDir, String runId, String referenceDtype,
      FolderLease lease) {
    OptimizationSettings s = settings();
    String modelPath = config.model().path();
    int workers = s.workers();
    Planned data = inputs.preparedDir() != null ? preparedPairs(storage, inputs.preparedDir(), modelPath)
        : textWindows(storage, inputs, modelPath, runDir, workers);
    ShardPlan plan = ShardPlan.of(data.train(), data.eval(), workers);
    int shardsPerWorker = data.train().size() / workers;
    int perStep = s.perDeviceTrainBatchSize() * s.gradientAccumulationSteps();
    if (perStep % shardsPerWorker != 0) {
      throw new IllegalArgumentException("each worker reads " + shardsPerWorker + " shards and takes equal parts of "
          + "its " + perStep + " examples per step (per_device_train_batch_size x gradient_accumulation_steps) from "
          + "each: make that a multiple of " + shardsPerWorker + ", or prepare " + workers + " shards");
    }
    long perWorker = 0;
    for (int r = 0; r < workers; r++) {
      perWorker = Math.max(perWorker, plan.train().get(r).stream().mapToLong(data.rows()::get).sum());
    }
    StepPlan steps = StepPlan.of(s, perWorker);
    SessionSpec spec = switch (stage) {
      case SFT -> SessionSpec.sft(config.model(), config.sft(), data.kind(), steps.totalSteps(), data.examples());
      case DPO -> SessionSpec.dpo(config.model(), config.train(), referenceModel(config), referenceDtype,
          steps.totalSteps(), data.examples());
      case REWARD -> SessionSpec.reward(config.model(), config.reward(), steps.totalSteps(), data.examples());
    };
    requireSameRun(storage, runDir, spec, data.fingerprint(), workers, replaceOtherRun);
    if (finished(storage, runDir, steps.totalSteps())) {
      LOG.info("{}: {} is up to date (same settings and data, {} steps done, model exported): nothing to do",
          stage.name().toLowerCase(), runDir, steps.totalSteps());
      return new Result(runDir, Storage.join(runDir, MODEL), steps.totalSteps(), null, lastEval(storage, runDir), true);
    }

    int checksumSteps = stage == SessionSpec.Stage.DPO ? config.train().checksumSteps() : 0;
    FaultPlan faults = stage == SessionSpec.Stage.DPO ? FaultPlan.of(config.train().faultInjection()) : FaultPlan.NONE;
    String label = "spark-dpo " + (stage == SessionSpec.Stage.DPO ? "train" : stage.name().toLowerCase());
    RunSpec run = new RunSpec(label, runId, runDir, plan, TrainingSchedule.of(steps, checksumSteps), s.maxAttempts(),
        s.saveTotalLimit(), faults, RingSettings.of(s), s.restartOnCorruptCheckpoints(), s.leaseTimeoutS());
    LOG.info("{}: {} training examples in {} shard(s), {} worker(s), {} per worker per step, {} steps", label,
        data.examples(), data.train().size(), workers, perStep, steps.totalSteps());
    RunOutcome outcome = new BarrierStageRunner(spark, run, new DjlWorkerTask(spec)).withProgress(progress)
        .withLease(lease).run();
    lease.requireHeld("export the final model");
    String modelDir = export(storage, runDir, steps.totalSteps());
    return new Result(runDir, modelDir, steps.totalSteps(), outcome, lastEval(storage, runDir), false);
  }

  private static Map<String, Object> lastEval(Storage storage, String runDir) {
    Map<String, Object> lastEval = null;
    for (Map<String, Object> record : MetricsLog.readAll(storage, runDir)) {
      if (record.keySet().stream().anyMatch(k -> k.startsWith("eval/"))) {
        lastEval = record;
      }
    }
    return lastEval;
  }

  /**
   * The run's last step is checkpointed (a valid checkpoint) and its model exported in {@code model.save_dtype}
   * (the export writes generation_config.json last): running again would only repeat the export.
   */
  private boolean finished(Storage storage, String runDir, long totalSteps) {
    String model = Storage.join(runDir, MODEL);
    if (!storage.exists(Storage.join(model, ModelFolder.GENERATION_CONFIG))
        || !storage.exists(Storage.join(runDir, MetricsLog.CONSOLIDATED))) {
      return false;
    }
    if (settings().peft() != null
        && !storage.exists(Storage.join(Storage.join(runDir, ADAPTER), CausalLM.ADAPTER_CONFIG))) {
      return false;
    }
    Optional<Checkpoint> last = new CheckpointStore(storage, runDir, null).latestValid();
    return last.isPresent() && last.get().step() == totalSteps
        && ModelFolder.readConfig(storage, model).torchDtype().equals(config.model().saveDtype());
  }

  /**
   * DPO's reference model: {@code reference.model} when set (the model the reference stage scores with), else the
   * starting policy ({@code model.path}, pi_SFT), as TRL does without {@code ref_model}. The in-loop reference loads
   * it and precomputed log-probs must come from it.
   */
  static String referenceModel(JobConfig config) {
    return config.reference().modelOr(config.model());
  }

  /**
   * What the precomputed reference log-probs must come from: the reference model's fingerprint, or with
   * {@code model.adapter} (and no other {@code reference.model}) base + adapter's ({@link AdapterFolder#withBase}):
   * the model the reference stage runs, and the in-loop LoRA reference.
   */
  static String referenceFingerprint(JobConfig config, Storage storage) {
    String reference = referenceModel(config);
    String base = CausalLM.fingerprintOf(reference, storage, config.model().seed());
    String adapter = config.reference().model() == null ? config.model().adapter() : null;
    return adapter == null ? base : AdapterFolder.withBase(base, AdapterFolder.fingerprint(storage, adapter));
  }

  /**
   * LoRA settings checked against each other before any Spark job: {@code model.adapter} continues LoRA training
   * (so needs {@code peft}) and must be a PEFT adapter folder with the shape and dropout {@code peft} says; with
   * LoRA the in-loop reference is the policy's own base, so {@code reference.model} cannot name another model.
   */
  private void checkPeft(Storage storage) {
    String section = section();
    PeftSettings peft = settings().peft();
    String adapter = config.model().adapter();
    if (adapter != null && peft == null) {
      throw new IllegalArgumentException("model.adapter is " + adapter + ", but " + section + ".peft is off: set "
          + section + ".peft.type=lora to go on training the adapter, or train the merged model in full (spark-dpo "
          + "export --model BASE --adapter " + adapter + " --merge)");
    }
    if (adapter != null) {
      PeftSettings saved = AdapterFolder.settings(storage, adapter);
      List<String> differ = new ArrayList<>();
      if (saved.r() != peft.r()) {
        differ.add(section + ".peft.r=" + peft.r() + " (adapter: " + saved.r() + ")");
      }
      if (saved.alpha() != peft.alpha()) {
        differ.add(section + ".peft.alpha=" + peft.alpha() + " (adapter: " + saved.alpha() + ")");
      }
      if (saved.dropout() != peft.dropout()) {
        // the loaded adapter's lora_dropout is the one applied
        differ.add(section + ".peft.dropout=" + peft.dropout() + " (adapter: " + saved.dropout() + ")");
      }
      if (!Set.copyOf(saved.targetModules()).equals(Set.copyOf(peft.targetModules()))) {
        differ.add(section + ".peft.target_modules=" + peft.targetModules() + " (adapter: " + saved.targetModules()
            + ")");
      }
      if (!Set.copyOf(saved.modulesToSave()).equals(Set.copyOf(peft.modulesToSave()))) {
        differ.add(section + ".peft.modules_to_save=" + peft.modulesToSave() + " (adapter: " + saved.modulesToSave()
            + ")");
      }
      if (!differ.isEmpty()) {
        throw new IllegalArgumentException("model.adapter " + adapter + " is not the adapter " + section + ".peft "
            + "describes: " + String.join(", ", differ) + "; set those keys to the adapter's values");
      }
    }
    if (peft != null && settings().mixedPrecision() != MixedPrecision.NO) {
      String path = config.model().path();
      DataType base = CausalLM.resolveDtype(config.model().dtype(),
          path.startsWith("builtin:") ? null : ModelFolder.configOf(storage, path));
      if (base != DataType.FLOAT32) {
        throw new IllegalArgumentException(section + ".mixed_precision is " + settings().mixedPrecision().yamlName()
            + ", but the LoRA base is held in " + base + " (model.dtype " + config.model().dtype() + ") and "
            + "computes in it: set mixed_precision to no, or model.dtype to float32");
      }
    }
    if (peft != null && stage == SessionSpec.Stage.DPO && config.reference().model() != null
        && !config.reference().model().equals(config.model().path())) {
      throw new IllegalArgumentException("reference.model is " + config.reference().model() + ", but with train.peft "
          + "the reference is the policy's base with its adapters off (" + config.model().path()
          + (adapter == null ? "" : " + model.adapter") + "): leave reference.model null");
    }
  }

  /** {@code reference.dtype} resolved against the reference model's config.json (checked here, on the driver). */
  static String referenceDtype(JobConfig config, Storage storage) {
    String reference = referenceModel(config);
    ModelConfig c = ModelFolder.configOf(storage, reference);
    return CausalLM.resolveDtype(config.reference().dtype(), reference.startsWith("builtin:") ? null : c).toString();
  }

  /** The training and evaluation shards, their rows, what they hold, and their fingerprint. */
  private record Planned(List<String> train, List<String> eval, Map<String, Long> rows, long examples,
                         SessionSpec.DataKind kind, String fingerprint) {}

  private Planned preparedPairs(Storage storage, String dir, String modelPath) {
    PreparedData d = PreparedData.open(storage, dir);
    d.requireTokenizerOf(modelPath, storage);
    if (stage == SessionSpec.Stage.DPO) {
      TrainSettings t = config.train();
      if (t.referenceMode() == TrainSettings.ReferenceMode.PRECOMPUTED) {
        String reference = referenceModel(config);
        d.requireReferenceFrom(reference, referenceFingerprint(config, storage), referenceDtype(config, storage));
      }
    }
    Map<String, Long> rows = new java.util.HashMap<>();
    for (PreparedData.ShardInfo shard : d.train()) {
      if (shard.rows() == 0) {
        throw new IllegalArgumentException("training shard " + shard.path() + " is empty: prepare fewer shards "
            + "(prepare.num_shards)");
      }
      rows.put(shard.path(), shard.rows());
    }
    return new Planned(d.trainFiles(), d.evalFiles(), rows, d.trainRows(), SessionSpec.DataKind.PAIRS,
        d.fingerprint());
  }

  private Planned textWindows(Storage storage, Inputs inputs, String modelPath, String runDir, int workers) {
    if (stage != SessionSpec.Stage.SFT) {
      throw new IllegalArgumentException("plain text trains the sft stage only");
    }
    String tokenizerSpec = PreparedData.tokenizerSpecOf(modelPath, storage);
    if (tokenizerSpec == null) {
      throw new IllegalArgumentException("model " + modelPath + " has no tokenizer.json to tokenize the text with");
    }
    int blockSize = config.sft().blockSize();
    ModelConfig model = modelPath.startsWith("builtin:") ? ModelConfig.tiny() : ModelFolder.readConfig(storage,
        modelPath);
    if (blockSize > model.maxPositionEmbeddings()) {
      throw new IllegalArgumentException("sft.block_size=" + blockSize + " exceeds the model's "
          + "max_position_embeddings=" + model.maxPositionEmbeddings());
    }
    int shards = config.prepare().numShards() > 0 ? config.prepare().numShards() : workers;
    String dir = Storage.join(runDir, "data");
    TextWindows.Manifest m = TextWindows.write(storage, dir, inputs.text(), inputs.evalText(),
        TextTokenizer.load(tokenizerSpec, storage), blockSize, shards);
    Map<String, Long> rows = new java.util.HashMap<>();
    List<String> train = m.shardFiles(dir, TextWindows.TRAIN);
    for (int i = 0; i < train.size(); i++) {
      long n = m.splits().get(TextWindows.TRAIN).shards().get(i).windows();
      if (n == 0) {
        throw new IllegalArgumentException("the text holds " + m.windows(TextWindows.TRAIN) + " windows of "
            + blockSize + " tokens, fewer than the " + shards + " shards: use a smaller sft.block_size or more text");
      }
      rows.put(train.get(i), n);
    }
    return new Planned(train, m.shardFiles(dir, TextWindows.EVAL), rows, m.windows(TextWindows.TRAIN),
        SessionSpec.DataKind.TEXT, m.fingerprint());
  }

  /**
   * A run folder belongs to one run: {@code RUN/run.json} records what the run computes (stage, model, loss and
   * optimiser settings, data, workers); a later invocation on the same folder resumes only when those agree. With
   * {@code replace}, a run with other settings is cleared instead of refused (see {@link #replacingOtherRun}).
   */
  static void requireSameRun(Storage storage, String runDir, Object spec, String dataFingerprint, int workers,
      boolean replace) {
    ObjectNode run = Json.MAPPER.createObjectNode();
    run.set("spec", strip(Json.MAPPER.valueToTree(spec)));
    run.put("data_fingerprint", dataFingerprint);
    run.put("workers", workers);
    String path = Storage.join(runDir, RUN_FILE);
    try {
      if (storage.exists(path)) {
        JsonNode before = Json.MAPPER.readTree(storage.readBytes(path));
        JsonNode now = Json.MAPPER.readTree(Json.MAPPER.writeValueAsBytes(run)); // same number types as read back
        List<String> changed = new ArrayList<>();
        diff("", before, now, changed);
        if (!changed.isEmpty() && replace) {
          LOG.warn("{} held a run with other settings ({}): cleared, training from scratch", runDir,
              String.join(", ", changed));
          new CheckpointStore(storage, runDir, null).clear();
          for (String part : List.of(RUN_FILE, MetricsLog.PARTS, MetricsLog.CONSOLIDATED, MODEL, ADAPTER, "faults")) {
            storage.delete(Storage.join(runDir, part));
          }
        } else if (!changed.isEmpty()) {
          throw new IllegalArgumentException(runDir + " holds a run with other settings (" + String.join(", ", changed)
              + "): resume it with the same settings, or use another output folder");
        } else {
          return;
        }
      }
      storage.writeBytes(path, Json.MAPPER.writeValueAsBytes(run));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read or write " + path + ": " + e.getMessage(), e);
    }
  }

  private static JsonNode strip(JsonNode node) {
    if (node instanceof ObjectNode obj) {
      obj.remove(FREE_ON_RESUME);
      obj.forEach(TrainingStage::strip);
    }
    return node;
  }

  private static void diff(String prefix, JsonNode a, JsonNode b, List<String> out) {
    if (a.isObject() && b.isObject()) {
      Set<String> keys = new java.util.TreeSet<>();
      a.fieldNames().forEachRemaining(keys::add);
      b.fieldNames().forEachRemaining(keys::add);
      for (String k : keys) {
        diff(prefix.isEmpty() ? k : prefix + "." + k, a.path(k), b.path(k), out);
      }
    } else if (!a.equals(b) && !(isAbsent(a) && isAbsent(b))) {
      out.add(prefix + ": " + a + " -> " + b);
    }
  }

  /** A key a run.json of an older version lacks and a null one mean the same: unset (e.g. peft, model.adapter). */
  private static boolean isAbsent(JsonNode n) {
    return n.isMissingNode() || n.isNull();
  }

  /**
   * Writes the model of the final checkpoint to {@code RUN/model}: the checkpoint's float32 files, verified as they
   * are copied, or converted to {@code model.save_dtype} bfloat16. A LoRA run's checkpoint holds an adapter: it is
   * copied (verified) to {@code RUN/adapter}, and {@code RUN/model} is the base with it merged (in
   * {@code model.save_dtype}), so that generate, evaluate and export read a LoRA run as any other.
   */
  private String export(Storage storage, String runDir, long totalSteps) {
    Checkpoint last = new CheckpointStore(storage, runDir, null).open(totalSteps);
    String out = Storage.join(runDir, MODEL);
    storage.delete(out);
    if (TrainerCheckpoint.holdsAdapter(last)) {
      String adapter = Storage.join(runDir, ADAPTER);
      storage.delete(adapter);
      copyModelFiles(storage, last, adapter);
      ModelSettings m = config.model();
      DataType base = m.dtype().equals("auto") ? null : CausalLM.resolveDtype(m.dtype(), null);
      // A reward model's base is the classifier the session trained on (pi_SFT given its seeded score head).
      try (CausalLM merged = stage == SessionSpec.Stage.REWARD
          ? CausalLM.loadScorer(m.path(), storage, CausalLM.device("cpu"), m.seed())
          : CausalLM.load(m.path(), storage, CausalLM.device("cpu"), m.seed(), base)) {
        merged.loadAdapter(adapter, storage);
        merged.saveMerged(out, storage, CausalLM.saveDtype(m.saveDtype()), ModelFolder.DEFAULT_MAX_SHARD_BYTES);
      }
      LOG.info("adapter of step {} exported to {}, merged into {} as {}", totalSteps, adapter, m.path(), out);
      return out;
    }
    if (config.model().saveDtype().equals("float32")) {
      copyModelFiles(storage, last, out);
    } else {
      try (CausalLM m = CausalLM.load(TrainerCheckpoint.modelFolder(last), storage, CausalLM.device("cpu"))) {
        m.save(out, storage, CausalLM.saveDtype(config.model().saveDtype()));
      }
    }
    LOG.info("model of step {} exported to {}", totalSteps, out);
    return out;
  }

  /** The checkpoint's model (or adapter) files, each verified against its checksum as it is copied. */
  static void copyModelFiles(Storage storage, Checkpoint checkpoint, String to) {
    TrainerCheckpoint.modelFiles(checkpoint).forEach((name, relative) ->
        storage.writeBytes(Storage.join(to, relative), checkpoint.read(name)));
  }
}
