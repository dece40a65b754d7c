package io.sparkdpo.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import io.sparkdpo.config.ModelSettings;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.config.MixedPrecision;
import io.sparkdpo.config.SftSettings;
import io.sparkdpo.config.TrainSettings;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.PreparedShardReader;
import io.sparkdpo.data.ReferenceColumns;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.ActivationCheckpoints;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ScalarOps;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One replica of a training run: the policy, the objective, AdamW, the learning-rate schedule and this replica's
 * shards. {@link #step} is the unit the loop (single or distributed) calls: take this replica's examples of the
 * step from each of its shards, forward and backward per micro-batch into the accumulated gradients, hand them to
 * the {@link GradientReducer} (identity for one replica, the TCP ring for several), then the update every replica
 * applies identically (clip, AdamW, schedule). With {@code gradient_checkpointing} each micro-batch's policy passes
 * keep only the decoder layers' inputs, and the layers are recomputed right after the loss's backward
 * ({@link ActivationCheckpoints}). Everything a step depends on is in a checkpoint
 * ({@link #checkpoint}), so a session opened from one continues bit for bit.
 *
 * <p>Each replica takes {@code per_device_train_batch_size x gradient_accumulation_steps / shards} examples from
 * each of its shards per step, in shard order, and a shard's shuffle depends on its name, the seed and the epoch
 * only: W replicas with S shards see the global batches of one replica reading all S shards.
 */
public final class TrainingSession<E> implements AutoCloseable {
  public static final String STEP_SECONDS = "perf/step_seconds";
  public static final String ALLREDUCE_SECONDS = "perf/allreduce_seconds";
  public static final String ALLREDUCE_BYTES = "perf/allreduce_bytes";
  /** float16 only: the loss scale the step's backward used. */
  public static final String LOSS_SCALE = "amp/loss_scale";
  /** float16 only: 1 when the step's update was skipped for non-finite gradients (averaged: the skipped share). */
  public static final String SKIPPED_STEP = "amp/skipped_step";

  /** One rank's shard: its file name (the data cursor's key) and examples. */
  public record Shard<E>(String name, List<E> examples) {}

  /**
   * What a step or an evaluation reports: means over {@code items} items (pairs or target tokens), and the ids of
   * the examples a step trained on, in batch order (empty for an evaluation).
   */
  public record Outcome(long items, Map<String, Double> metrics, List<String> exampleIds) {}

  private final SessionSpec spec;
  private final CausalLM policy;
  private final Objective<E> objective;
  private final List<Shard<E>> shards;
  private final List<E> eval;
  private final List<ShardSampler> samplers = new ArrayList<>();
  private final TimedReducer reducer;
  private final LearningRateSchedule schedule;
  private final AdamW adamw;
  private final GradientAccumulator accumulator;
  private final OptimizerStep optimizerStep;
  private final LossScaler scaler;
  private final NDManager manager;
  private final int perShard;
  /** LoRA dropout's seed (the run's); null without dropout. */
  private final Long dropoutSeed;
  private long steps;
  private Path scratch;

  private TrainingSession(SessionSpec spec, CausalLM policy, Objective<E> objective, List<Shard<E>> shards,
      List<E> eval, GradientReducer reducer, Optional<Checkpoint> resume) {
    this.spec = spec;
    this.policy = policy;
    this.objective = objective;
    this.shards = List.copyOf(shards);
    this.eval = List.copyOf(eval);
    this.reducer = new TimedReducer(reducer);
    var settings = spec.optimization();
    if (shards.isEmpty() || spec.examplesPerReplicaStep() % shards.size() != 0) {
      throw new IllegalArgumentException("a replica takes " + spec.examplesPerReplicaStep() + " examples per step "
          + "(per_device_train_batch_size x gradient_accumulation_steps), which its " + shards.size()
          + " shard(s) cannot supply in equal parts");
    }
    this.perShard = spec.examplesPerReplicaStep() / shards.size();
    this.schedule = LearningRateSchedule.of(settings, spec.totalSteps());
    if (policy.dtype() != DataType.FLOAT32 && settings.mixedPrecision() != MixedPrecision.NO) {
      // A LoRA base held in bf16/fp16 (model.dtype) already computes in it; autocast applies to float32 weights.
      throw new IllegalArgumentException(sectionOf(spec.stage())
          + ".mixed_precision is " + settings.mixedPrecision().yamlName() + ", but the LoRA base is held in " + policy.dtype()
          + " (model.dtype) and computes in it: set mixed_precision to no, or model.dtype to float32");
    }
    // Only what training updates: every parameter, or with LoRA the adapters (their gradients alone are
    // accumulated, all-reduced and clipped; AdamW's moments exist for them alone).
    LinkedHashMap<String, NDArray> arrays = new LinkedHashMap<>();
    policy.trainableParameters().forEach((name, p) -> arrays.put(name, p.getArray()));
    this.dropoutSeed = policy.hasAdapters() && policy.peft().dropout() > 0 ? settings.seed() : null;
    this.manager = NDManager.newBaseManager(policy.device(), "PyTorch");
    this.adamw = new AdamW(arrays, AdamW.Hyper.of(settings), AdamW.decaysByDefault());
    this.accumulator = new GradientAccumulator(new ArrayList<>(arrays.values()));
    if (policy.dtype() == DataType.FLOAT32) {
      policy.computeDtype(computeDtype(settings.mixedPrecision()));
    }
    this.scaler = settings.mixedPrecision() == MixedPrecision.FP16 ? LossScaler.dynamic() : LossScaler.off();
    this.optimizerStep = new OptimizerStep(adamw, schedule, settings.maxGradNorm(), this.reducer,
        settings.allreduceBucketBytes(), scaler);
    try {
      DataCursor cursor = null;
      if (resume.isPresent()) {
        TrainerCheckpoint.State state = TrainerCheckpoint.readState(resume.get());
        if (policy.hasAdapters() && !policy.fingerprint().equals(state.baseFingerprint())) {
          throw new IllegalArgumentException("checkpoint " + resume.get().dir() + " holds an adapter trained on a base "
              + "with fingerprint " + state.baseFingerprint() + ", but model.path " + spec.model().path() + " has "
              + policy.fingerprint() + ": resume with the base the run started from");
        }
        if (!state.schedule().equals(schedule)) {
          throw new IllegalArgumentException("checkpoint " + resume.get().dir() + " was written with the schedule "
              + state.schedule() + ", this run's is " + schedule + ": the settings changed since (steps, rate, "
              + "warmup); resume with the same settings or start a new output folder");
        }
        scaler.restore(state.lossScale(), resume.get().dir());
        TrainerCheckpoint.restoreOptimizer(resume.get(), adamw, state.step() - scaler.skippedSteps());
        objective.restore(resume.get());
        cursor = state.data();
        steps = state.step();
      }
      for (Shard<E> s : shards) {
        if (s.examples().isEmpty()) {
          throw new IllegalArgumentException("training shard " + s.name() + " is empty: prepare fewer shards");
        }
        ShardCursor c = cursor != null ? cursor.shard(s.name())
            : ShardCursor.start(s.name(), s.examples().size(), SeededRng.derive(settings.seed(), s.name().hashCode()));
        samplers.add(new ShardSampler(c, s.examples().size()));
      }
    } catch (RuntimeException e) {
      closeOwned();
      throw e;
    }
  }

  /** The config section of a stage's settings. */
  static String sectionOf(SessionSpec.Stage stage) {
    return switch (stage) {
      case SFT -> "sft";
      case DPO -> "train";
      case REWARD -> "reward";
    };
  }

  /** The policy's matmul dtype under {@code mixed_precision}: the master weights stay float32 in every case. */
  static DataType computeDtype(MixedPrecision mixed) {
    return switch (mixed) {
      case NO -> DataType.FLOAT32;
      case BF16 -> DataType.BFLOAT16;
      case FP16 -> DataType.FLOAT16;
    };
  }

  /**
   * Loads what {@code spec} names and builds this replica: the policy ({@link #loadPolicy}), the objective (DPO
   * {@code in_loop}: a frozen reference model loaded from {@code spec.referenceModel()}, on a resume too, or with
   * LoRA the policy itself with its adapters switched to the reference set), and its shards (with checks for DPO
   * {@code precomputed}: every pair must carry reference log-probs).
   */
  public static TrainingSession<?> open(SessionSpec spec, Storage storage, Device device, List<String> trainShards,
      List<String> evalShards, GradientReducer reducer, Optional<Checkpoint> resume) {
    CausalLM policy = loadPolicy(spec, storage, device, resume);
    Objective<?> objective = null;
    try {
      if (spec.stage() == SessionSpec.Stage.DPO) {
        TrainSettings t = spec.dpo();
        DpoLoss loss = DpoLoss.of(t);
        // Every loss type gets reference log-probs, reference_free too: its rewards use them, as in TRL.
        boolean precomputed = t.referenceMode() == TrainSettings.ReferenceMode.PRECOMPUTED;
        List<Shard<PreparedPair>> train = pairShards(storage, trainShards, precomputed);
        List<PreparedPair> evalPairs = flatten(pairShards(storage, evalShards, precomputed));
        boolean inLoop = !precomputed;
        DpoObjective dpo;
        if (inLoop && policy.hasAdapters()) {
          dpo = DpoObjective.withAdapterReference(policy, loss);
        } else {
          CausalLM reference = inLoop
              ? CausalLM.load(spec.referenceModel(), storage, device, spec.model().seed(), referenceDtype(spec))
              : null;
          if (reference != null && reference.dtype() == DataType.FLOAT32) {
            // The reference runs the policy's arithmetic, as under TRL's autocast: step 1 is exactly ln 2 again.
            reference.computeDtype(computeDtype(t.mixedPrecision()));
          }
          dpo = new DpoObjective(policy, reference, loss);
        }
        objective = dpo;
        return new TrainingSession<>(spec, policy, dpo, train, evalPairs, reducer, resume);
      }
      if (spec.stage() == SessionSpec.Stage.REWARD) {
        RewardObjective reward = new RewardObjective(policy, new RewardLoss(spec.reward().centerRewardsCoefficient()));
        objective = reward;
        List<Shard<PreparedPair>> train = pairShards(storage, trainShards, false);
        return new TrainingSession<>(spec, policy, reward, train, flatten(pairShards(storage, evalShards, false)),
            reducer, resume);
      }
      SftSettings s = spec.sft();
      SftObjective sft = new SftObjective(policy, s.completionOnlyLoss());
      objective = sft;
      List<Shard<LmExample>> train = lmShards(storage, trainShards, spec.data());
      return new TrainingSession<>(spec, policy, sft, train, flatten(lmShards(storage, evalShards, spec.data())),
          reducer, resume);
    } catch (RuntimeException | Error e) {
      if (objective != null) {
        objective.close();
      }
      policy.close();
      throw e;
    }
  }

  /** The in-loop reference's dtype: {@code reference.dtype} as the driver resolved it (float32 when unset). */
  private static DataType referenceDtype(SessionSpec spec) {
    return CausalLM.resolveDtype(spec.referenceDtype() == null ? "float32" : spec.referenceDtype(), null);
  }

  /**
   * The policy to train. Full fine-tuning: float32 master weights whatever {@code model.dtype} says (mixed precision
   * is its own setting), from the checkpoint when resuming. LoRA ({@code peft}): the frozen base from
   * {@code model.path} in {@code model.dtype} (a bf16 base stays bf16), on a resume too, plus float32 adapters: the
   * checkpoint's when resuming, else {@code model.adapter}'s, else new ones seeded from the run's seed; with
   * {@code model.adapter} the same adapter is also loaded, frozen, as the reference set (DPO on top of an SFT adapter:
   * the reference is base + that adapter, TRL's {@code ref_adapter_name}).
   */
  static CausalLM loadPolicy(SessionSpec spec, Storage storage, Device device, Optional<Checkpoint> resume) {
    ModelSettings m = spec.model();
    PeftSettings peft = spec.optimization().peft();
    if (spec.stage() == SessionSpec.Stage.REWARD && (resume.isEmpty() || peft != null)) {
      // pi_SFT (or any causal LM) gains a new score head; a reward model folder loads as it is. Under LoRA that is
      // the frozen base (float32) on a resume too, and the score head trains whole beside the adapters.
      CausalLM scorer = CausalLM.loadScorer(m.path(), storage, device, m.seed());
      if (peft == null) {
        return scorer;
      }
      try {
        if (resume.isPresent()) {
          scorer.loadAdapter(TrainerCheckpoint.adapterFolder(resume.get()), storage);
        } else if (m.adapter() != null) {
          scorer.loadAdapter(m.adapter(), storage);
        } else {
          scorer.addLora(peft, spec.optimization().seed());
        }
        return scorer;
      } catch (RuntimeException | Error e) {
        scorer.close();
        throw e;
      }
    }
    if (peft == null) {
      String from = resume.isPresent() ? TrainerCheckpoint.modelFolder(resume.get()) : m.path();
      return CausalLM.load(from, storage, device, m.seed(), DataType.FLOAT32);
    }
    DataType base = m.dtype().equals("auto") ? null : CausalLM.resolveDtype(m.dtype(), null);
    CausalLM policy = CausalLM.load(m.path(), storage, device, m.seed(), base);
    try {
      if (resume.isPresent()) {
        policy.loadAdapter(TrainerCheckpoint.adapterFolder(resume.get()), storage);
      } else if (m.adapter() != null) {
        policy.loadAdapter(m.adapter(), storage);
      } else {
        policy.addLora(peft, spec.optimization().seed());
      }
      if (m.adapter() != null) {
        policy.loadReferenceAdapter(m.adapter(), storage);
      }
      return policy;
    } catch (RuntimeException | Error e) {
      policy.close();
      throw e;
    }
  }

  private static List<Shard<PreparedPair>> pairShards(Storage storage, List<String> paths, boolean requireReference) {
    List<Shard<PreparedPair>> out = new ArrayList<>();
    for (String path : paths) {
      List<PreparedPair> pairs = PreparedShardReader.read(storage, path);
      if (requireReference) {
        requireReferenceColumns(path, pairs);
      }
      out.add(new Shard<>(fileName(path), pairs));
    }
    return out;
  }

  /** Every pair must carry both reference log-probs; the first that does not is named with its file and row. */
  static void requireReferenceColumns(String path, List<PreparedPair> pairs) {
    for (int i = 0; i < pairs.size(); i++) {
      PreparedPair p = pairs.get(i);
      String missing = p.refChosenLogp() == null ? ReferenceColumns.CHOSEN_LOGPS : p.refRejectedLogp() == null
          ? ReferenceColumns.REJECTED_LOGPS : null;
      if (missing != null) {
        throw new IllegalArgumentException(path + " row " + (i + 1) + " (pair " + p.pairId() + ", from "
            + p.sourceFile() + " row " + p.sourceRow() + "): column " + missing + " is missing or null, but "
            + "train.reference_mode is precomputed: run the reference stage on this data first, or set "
            + "train.reference_mode=in_loop");
      }
    }
  }

  private static List<Shard<LmExample>> lmShards(Storage storage, List<String> paths, SessionSpec.DataKind kind) {
    List<Shard<LmExample>> out = new ArrayList<>();
    for (String path : paths) {
      List<LmExample> examples;
      if (kind == SessionSpec.DataKind.TEXT) {
        examples = TextWindows.readShard(storage, path);
      } else {
        examples = new ArrayList<>();
        for (PreparedPair p : PreparedShardReader.read(storage, path)) {
          examples.add(new LmExample(p.pairId(), p.promptIds(), p.chosenIds()));
        }
      }
      out.add(new Shard<>(fileName(path), examples));
    }
    return out;
  }

  private static <T> List<T> flatten(List<Shard<T>> shards) {
    List<T> all = new ArrayList<>();
    shards.forEach(s -> all.addAll(s.examples()));
    return all;
  }

  private static String fileName(String path) {
    return path.substring(path.lastIndexOf('/') + 1);
  }

  public long stepsDone() {
    return steps;
  }

  public CausalLM policy() {
    return policy;
  }

  /**
   * Optimizer step {@code step} (1-based, the next one): this replica's examples, forward and backward per
   * micro-batch, the reducer's all-reduce, the update.
   *
   * @throws NonFiniteException naming the step and the examples, when a loss or the gradient is NaN or infinite; the
   *     parameters and optimizer state are then as they were before the step
   */
  public Outcome step(long step) {
    if (step != steps + 1) {
      throw new IllegalArgumentException("step " + step + " requested, but " + steps + " steps are done");
    }
    long start = System.nanoTime();
    reducer.reset();
    List<E> batch = new ArrayList<>(spec.examplesPerReplicaStep());
    for (int i = 0; i < shards.size(); i++) {
      for (int row : samplers.get(i).next(perShard)) {
        batch.add(shards.get(i).examples().get(row));
      }
    }
    List<String> ids = batch.stream().map(objective::id).toList();
    double[] stats = objective.emptyStats();
    long items = 0;
    long tokens = 0;
    double lossScale = scaler.scale();
    int micro = spec.optimization().perDeviceTrainBatchSize();
    boolean checkpointing = spec.optimization().gradientCheckpointing();
    try (GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
      for (int from = 0; from < batch.size(); from += micro) {
        List<E> part = batch.subList(from, Math.min(batch.size(), from + micro));
        seedDropout(step, from, ids.get(from));
        try (NDManager scope = manager.newSubManager();
            ActivationCheckpoints checkpoints = checkpointing ? policy.gradientCheckpointing(scope) : null) {
          Objective.Forward f = objective.forward(scope, part);
          NonFiniteException.requireFinite(step, "loss", f.lossValue(), ids);
          if (scaler.isDynamic()) {
            collector.backward(ScalarOps.mul(f.lossSum(), scaler.scale()));
          } else {
            collector.backward(f.lossSum());
          }
          if (checkpoints != null) {
            checkpoints.backward(); // the decoder layers' gradients, each layer recomputed from its kept input
          }
          accumulator.addMicroBatch(f.items());
          add(stats, f.stats());
          items += f.items();
        }
        for (E e : part) {
          tokens += objective.tokens(e);
        }
      }
    } catch (RuntimeException | Error e) {
      accumulator.zero();
      throw e;
    }
    long[] global = globalCounts(items, tokens);
    OptimizerStep.Result r;
    try {
      r = optimizerStep.apply(step - 1, accumulator, global[0], ids);
    } catch (NonFiniteException e) {
      // The optimizer counts updates done before this one; the run counts steps from 1.
      NonFiniteException named = new NonFiniteException(step, e.quantity(), e.value(), e.pairIds());
      named.initCause(e);
      throw named;
    }
    steps = step;
    double seconds = (System.nanoTime() - start) / 1e9;
    Map<String, Double> metrics = new LinkedHashMap<>(objective.metrics(stats));
    metrics.put(MetricNames.GRAD_NORM, r.gradNorm());
    metrics.put(MetricNames.LEARNING_RATE, r.learningRate());
    metrics.put(MetricNames.EPOCH, epochAt(step));
    metrics.put(MetricNames.NUM_TOKENS, (double) global[1]);
    metrics.put(MetricNames.TOKENS_PER_SECOND, global[1] / seconds);
    metrics.put(STEP_SECONDS, seconds);
    metrics.put(ALLREDUCE_SECONDS, reducer.nanos / 1e9);
    metrics.put(ALLREDUCE_BYTES, (double) r.allReducedBytes());
    if (scaler.isDynamic()) {
      metrics.put(LOSS_SCALE, lossScale);
      metrics.put(SKIPPED_STEP, r.skipped() ? 1.0 : 0.0);
    }
    return new Outcome(items, metrics, ids);
  }

  /**
   * LoRA dropout draws from torch's generator: seeded before every micro-batch from the run's seed, the step, the
   * micro-batch's place and its first example, the masks are the same on a resume (exact resume) and differ between
   * replicas, whose examples differ. Without dropout nothing draws and nothing is seeded.
   */
  private void seedDropout(long step, int offset, String firstExample) {
    if (dropoutSeed != null) {
      long seed = SeededRng.derive(SeededRng.derive(SeededRng.derive(dropoutSeed, step), offset),
          firstExample.hashCode());
      Engine.getEngine("PyTorch").setRandomSeed((int) (seed ^ (seed >>> 32)));
    }
  }

  /**
   * The global batch's items (pairs, or SFT target tokens, which differ between replicas) and tokens (the
   * {@code num_tokens} metric): sums over replicas through the reducer, exact as two float halves of a count below
   * 2^35 each.
   */
  private long[] globalCounts(long items, long tokens) {
    if (reducer.worldSize() == 1) {
      return new long[] {items, tokens};
    }
    FloatBuffer halves = FloatBuffer.wrap(new float[] {items >>> 12, items & 0xFFF, tokens >>> 12, tokens & 0xFFF});
    reducer.allReduceMean(halves);
    int w = reducer.worldSize();
    return new long[] {
        (Math.round((double) halves.get(0) * w) << 12) + Math.round((double) halves.get(1) * w),
        (Math.round((double) halves.get(2) * w) << 12) + Math.round((double) halves.get(3) * w)};
  }

  /** Metrics over this replica's evaluation examples, in fixed order, without graph. */
  public Outcome evaluate() {
    double[] stats = objective.emptyStats();
    int size = spec.optimization().perDeviceEvalBatchSize();
    for (int from = 0; from < eval.size(); from += size) {
      try (NDManager scope = manager.newSubManager()) {
        add(stats, objective.evaluate(scope, eval.subList(from, Math.min(eval.size(), from + size))));
      }
    }
    return new Outcome(objective.items(stats), objective.metrics(stats), List.of());
  }

  /** The names of the metrics {@link #evaluate} reports (unprefixed), whatever the data. */
  public java.util.Set<String> evaluationMetricNames() {
    return objective.metrics(objective.emptyStats()).keySet();
  }

  /** Fractional epochs after {@code step} steps of the global batch. */
  public double epochAt(long step) {
    return (double) step * spec.examplesPerReplicaStep() * reducer.worldSize() / spec.trainExamples();
  }

  /** Where this replica's shards stand (its part of the checkpoint's data cursor). */
  public DataCursor cursor() {
    return new DataCursor(samplers.stream().map(ShardSampler::cursor).toList());
  }

  /**
   * The files of checkpoint {@code step} ({@link TrainerCheckpoint}): the policy in Hugging Face layout (float32, with
   * its tokenizer files) or, with LoRA, the adapter in PEFT layout, AdamW's moments and step, the loop state with
   * {@code data} (every replica's cursors merged) and the objective's state. The model is staged in a local scratch folder, deleted at the next checkpoint or on
   * close.
   */
  public Map<String, PayloadWriter> checkpoint(long step, DataCursor data) {
    if (step != steps) {
      throw new IllegalArgumentException("checkpoint of step " + step + " requested after step " + steps);
    }
    deleteScratch();
    try {
      scratch = Files.createTempDirectory("spark-dpo-checkpoint-");
      // Shuffles derive from the seed, shard and epoch, and LoRA dropout from the seed and the step: the RNG state is
      // the seed's; it is stored so that a resumed run can check it and later randomness can use it.
      SeededRng.State rng = new SeededRng(spec.optimization().seed()).state();
      if (policy.hasAdapters()) {
        // The base is model.path, unchanged by training: the adapter alone (PEFT layout, float32) is the model state.
        policy.saveAdapter(scratch.toString(), Storage.local());
        return TrainerCheckpoint.payload(scratch, adamw.exportState(), new TrainerCheckpoint.State(step,
            epochAt(step), schedule, data, rng, scaler.state(), policy.fingerprint()), objective.checkpointFiles());
      }
      policy.save(scratch.toString(), Storage.local(), DataType.FLOAT32);
      return TrainerCheckpoint.payload(scratch, adamw.exportState(),
          new TrainerCheckpoint.State(step, epochAt(step), schedule, data, rng, scaler.state(), null),
          objective.checkpointFiles());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot stage checkpoint " + step + ": " + e.getMessage(), e);
    }
  }

  /**
   * Every trained parameter's array in the model's order (for checksums): all parameters, or with LoRA the
   * adapters (the frozen base is the same file on every replica).
   */
  public List<NDArray> parameterArrays() {
    List<NDArray> out = new ArrayList<>();
    for (Parameter p : policy.trainableParameters().values()) {
      out.add(p.getArray());
    }
    return out;
  }

  private static void add(double[] into, double[] more) {
    for (int i = 0; i < into.length; i++) {
      into[i] += more[i];
    }
  }

  private void deleteScratch() {
    if (scratch == null) {
      return;
    }
    TrainerCheckpoint.deleteStaging(scratch);
    scratch = null;
  }

  private void closeOwned() {
    accumulator.close();
    adamw.close();
    manager.close();
  }

  @Override
  public void close() {
    try {
      deleteScratch();
    } finally {
      closeOwned();
      objective.close();
      policy.close();
    }
  }

  /** The reducer, timed: how long a step spends communicating. */
  private static final class TimedReducer implements GradientReducer {
    private final GradientReducer inner;
    private long nanos;

    TimedReducer(GradientReducer inner) {
      this.inner = inner;
    }

    void reset() {
      nanos = 0;
    }

    @Override
    public int worldSize() {
      return inner.worldSize();
    }

    @Override
    public void allReduceMean(FloatBuffer direct) {
      long t = System.nanoTime();
      inner.allReduceMean(direct);
      nanos += System.nanoTime() - t;
    }
  }
}
