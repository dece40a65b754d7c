package io.sparkdpo.train;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.OptimizationSettings;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.config.TrainSettings;
import io.sparkdpo.io.Json;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Per-worker memory of a DPO training step, from config.json and the job's settings alone (no weights loaded).
 * Lasting parts: the policy's weights (float32 for full fine-tuning, whose weights are their own master copy; the
 * base dtype under LoRA, frozen), gradients and AdamW's two float32 moments of the trainable parameters, float32
 * master weights when mixed precision computes with low-precision copies, an in-loop reference model (none under
 * LoRA: the reference is the base with adapters disabled; none when precomputed), LoRA adapters, one all-reduce
 * bucket (W > 1) and the runtime (JVM and libtorch, {@link #CPU_OVERHEAD_BYTES} measured here).
 *
 * <p>Activations follow what this project's model actually keeps, phase by phase of a step (T = 2 x batch x
 * sequence tokens: chosen and rejected run as one forward; R = 2 x batch x response rows reach the LM head):
 * <ol>
 *   <li><b>trunk forward</b>: a forward pass keeps every array it makes in its scope until it returns
 *       (CausalLM's sub-manager), so at its end all intermediates of all layers are alive, saved or not: per layer
 *       and token 8 d (norms' two outputs twice, o_proj and down_proj outputs, two residuals) + 3 q (q_proj out,
 *       rotated q, attention out) + 3 kv (k_proj out, rotated k, v) + 2 q with grouped-query attention (keys and
 *       values repeated to all heads) + 4 I (gate, up, silu(gate), their product), plus the q and k projection
 *       weights gathered into rotary order (per layer (q + kv) x d, kept for backward);</li>
 *   <li><b>LM head forward</b>: what autograd saved of the trunk (per layer and token 6 d + 2 q + 2 q or 2 kv +
 *       4 I) plus the response rows [R, d] and their float32 logits [R, V] with logsumexp's one temporary;</li>
 *   <li><b>reference forward</b> (in-loop): the policy's saved activations and logits, plus a no-graph forward of
 *       the reference, whose scope again holds all its intermediates (the silu temporary excepted) and chunks of
 *       at most 1024 head rows;</li>
 *   <li><b>backward</b>: the saved activations, four [R, V] float32 arrays while the head's gradient forms
 *       (saved logits, logsumexp's and gather's gradients, a temporary) and the largest trainable tensor's
 *       gradient before it is added into place;</li>
 *   <li><b>optimizer</b>: AdamW's two temporaries the size of the largest trainable tensor.</li>
 * </ol>
 * With gradient checkpointing the layers run one at a time (ActivationCheckpoints): the trunk keeps each layer's
 * input and the top leaf, a forward holds one layer's intermediates at a time, and backward re-runs one layer with
 * graph (its intermediates, its gradients, the upstream gradient) while the inputs below it wait.
 * The peak is the lasting parts plus the largest phase. Gradient accumulation changes none of this (micro-batches
 * run one after another); more workers change only the all-reduce bucket (every worker holds a full replica).
 *
 * <p>A reward model ({@link SessionSpec.Stage#REWARD}, {@code spark-dpo reward}) is the same decoder with a [1, d]
 * score head instead of the LM head (a causal LM's config is planned as {@link ModelConfig#asSequenceClassifier},
 * what the stage trains) and no reference: its head phase holds the pooled last hidden state of each of the 2 x
 * batch rows and their scores instead of [R, V] logits, and its backward has no logits' gradients. Under LoRA the
 * score head trains in full beside the adapters (PEFT's SEQ_CLS task), a float32 copy of [1, d].
 */
public final class MemoryPlanner {
  public static final String WEIGHTS = "weights";
  public static final String GRADIENTS = "gradients";
  public static final String OPTIMIZER = "optimizer";
  public static final String MASTER = "master_weights";
  public static final String REFERENCE = "reference";
  public static final String ADAPTERS = "lora_adapters";
  public static final String ACTIVATIONS = "activations";
  public static final String ALLREDUCE = "allreduce_buffers";
  public static final String OVERHEAD = "runtime_overhead";

  /**
   * Resident memory of a training JVM before any model: the JVM with a 512 MiB Java heap, libtorch's CPU kernels and
   * thread pools, the Parquet and Hadoop classes, a training step of a 0.1M-parameter model: 753 MiB measured
   * (MemoryCalibrationBench, docs/benchmarks.md). A larger executor heap adds what it touches.
   */
  public static final long CPU_OVERHEAD_BYTES = 753L << 20;
  /**
   * On a GPU: the CUDA context and cuBLAS/cuDNN workspaces and the caching allocator's slack. An assumption from
   * PyTorch's usual figures (no GPU here to measure on); the JVM itself lives in host memory.
   */
  public static final long GPU_OVERHEAD_BYTES = 1L << 30;
  /** Rows SequenceLogProbs sends through the LM head at once without graph. */
  static final int HEAD_CHUNK_ROWS = 1024;

  /** Linear layers LoRA can adapt, as PEFT names them. */
  public static final Set<String> LINEAR_MODULES = Set.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
      "up_proj", "down_proj");

  /** Where the reference log-probs come from. */
  public enum Reference {
    /** The pairs carry them ({@code precomputed}). */
    NONE,
    /** A frozen model in the loop: a second copy of the weights for full fine-tuning, the base under LoRA. */
    IN_LOOP
  }

  /** LoRA as PEFT configures it: rank, dropout, adapted linear modules, modules trained as full float32 copies. */
  public record Lora(int r, double dropout, List<String> targetModules, List<String> modulesToSave) {
    public Lora {
      targetModules = List.copyOf(targetModules);
      modulesToSave = List.copyOf(modulesToSave);
      if (r <= 0) {
        throw new IllegalArgumentException("lora r must be > 0 (got " + r + ")");
      }
      for (String m : targetModules) {
        if (!LINEAR_MODULES.contains(m)) {
          throw new IllegalArgumentException("lora target module " + m + " is not one of " + LINEAR_MODULES);
        }
      }
    }

    /** The contract's default: every attention and MLP projection. */
    public static Lora allLinear(int r) {
      return new Lora(r, 0, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
          List.of());
    }
  }

  /**
   * One worker's training job.
   *
   * @param baseDtype dtype of frozen base weights under LoRA ({@code model.dtype} resolved: float32, bfloat16,
   *     float16); full fine-tuning trains float32 weights whatever it says
   * @param lora null for full fine-tuning
   * @param mixedPrecision {@code no}, {@code bf16} or {@code fp16}
   * @param referenceDtype dtype of an in-loop reference model (full fine-tuning; {@code reference.dtype})
   * @param batchSize pairs per micro-batch ({@code per_device_train_batch_size})
   * @param sequenceLength longest prompt + response of a batch (its padded length)
   * @param responseLength longest response: rows that reach the LM head per sequence
   * @param bucketBytes all-reduce bucket capacity ({@code allreduce_bucket_mb})
   * @param overheadBytes the runtime's own resident memory
   */
  public record Job(ModelConfig model, String baseDtype, Lora lora, boolean gradientCheckpointing,
      String mixedPrecision, Reference reference, String referenceDtype, int batchSize,
      int gradientAccumulationSteps, int sequenceLength, int responseLength, int workers, long bucketBytes,
      long overheadBytes, SessionSpec.Stage stage) {
    /** A DPO step. */
    public Job(ModelConfig model, String baseDtype, Lora lora, boolean gradientCheckpointing, String mixedPrecision,
        Reference reference, String referenceDtype, int batchSize, int gradientAccumulationSteps, int sequenceLength,
        int responseLength, int workers, long bucketBytes, long overheadBytes) {
      this(model, baseDtype, lora, gradientCheckpointing, mixedPrecision, reference, referenceDtype, batchSize,
          gradientAccumulationSteps, sequenceLength, responseLength, workers, bucketBytes, overheadBytes,
          SessionSpec.Stage.DPO);
    }

    /**
     * {@code stage} is DPO or REWARD; a reward model's job plans the classifier of a causal LM's config (the score
     * head for the LM head) and has no reference.
     */
    public Job {
      if (stage != SessionSpec.Stage.DPO && stage != SessionSpec.Stage.REWARD) {
        throw new IllegalArgumentException("memory plans exist for dpo and reward steps (got " + stage + ")");
      }
      if (stage == SessionSpec.Stage.REWARD) {
        model = model.asSequenceClassifier();
        reference = Reference.NONE;
      }
      bytesOf(baseDtype);
      bytesOf(referenceDtype);
      if (!Set.of("no", "bf16", "fp16").contains(mixedPrecision)) {
        throw new IllegalArgumentException("mixed_precision must be no, bf16 or fp16 (got " + mixedPrecision + ")");
      }
      if (batchSize <= 0 || gradientAccumulationSteps <= 0 || sequenceLength <= 0 || workers <= 0) {
        throw new IllegalArgumentException("batch size, accumulation steps, sequence length and workers must be > 0");
      }
      if (responseLength <= 0 || responseLength > sequenceLength) {
        throw new IllegalArgumentException("response length must be in [1, sequence length " + sequenceLength
            + "] (got " + responseLength + ")");
      }
    }

    public Job withLora(Lora l) {
      return new Job(model, baseDtype, l, gradientCheckpointing, mixedPrecision, reference, referenceDtype,
          batchSize, gradientAccumulationSteps, sequenceLength, responseLength, workers, bucketBytes, overheadBytes,
          stage);
    }

    public Job withGradientCheckpointing(boolean on) {
      return new Job(model, baseDtype, lora, on, mixedPrecision, reference, referenceDtype, batchSize,
          gradientAccumulationSteps, sequenceLength, responseLength, workers, bucketBytes, overheadBytes, stage);
    }

    public Job withMixedPrecision(String mode) {
      return new Job(model, baseDtype, lora, gradientCheckpointing, mode, reference, referenceDtype, batchSize,
          gradientAccumulationSteps, sequenceLength, responseLength, workers, bucketBytes, overheadBytes, stage);
    }

    public Job withReference(Reference r) {
      return new Job(model, baseDtype, lora, gradientCheckpointing, mixedPrecision, r, referenceDtype, batchSize,
          gradientAccumulationSteps, sequenceLength, responseLength, workers, bucketBytes, overheadBytes, stage);
    }

    /** Micro-batch {@code size}, accumulation raised so the pairs per step stay (at least) the same. */
    public Job withBatchSize(int size) {
      int pairs = batchSize * gradientAccumulationSteps;
      return new Job(model, baseDtype, lora, gradientCheckpointing, mixedPrecision, reference, referenceDtype, size,
          (pairs + size - 1) / size, sequenceLength, responseLength, workers, bucketBytes, overheadBytes, stage);
    }
  }

  /** A change of settings and the plan with it. */
  public record Suggestion(String change, MemoryPlan plan) {}

  private MemoryPlanner() {}

  /**
   * The job {@code cfg} describes for a model of {@code model}: the train section's batch, method ({@code peft},
   * {@code gradient_checkpointing}, {@code mixed_precision}) and reference, the sequence length of
   * {@code prepare.max_length}, responses of {@code responseLength} tokens (null: the worst case, a one-token
   * prompt), {@code workers} (null: {@code train.workers}) and the overhead of the configured device.
   */
  public static Job jobOf(JobConfig cfg, ModelConfig model, Integer workers, Integer responseLength) {
    return jobOf(cfg, model, workers, responseLength, SessionSpec.Stage.DPO);
  }

  /**
   * As {@link #jobOf(JobConfig, ModelConfig, Integer, Integer)} for {@code stage}: DPO reads the {@code train}
   * section, REWARD the {@code reward} section (no reference; the response length does not matter).
   */
  public static Job jobOf(JobConfig cfg, ModelConfig model, Integer workers, Integer responseLength,
      SessionSpec.Stage stage) {
    boolean reward = stage == SessionSpec.Stage.REWARD;
    OptimizationSettings t = reward ? cfg.reward() : cfg.train();
    // peft and mixed_precision are read from the bound tree: absent (older configs) means full fine-tuning in
    // float32.
    JsonNode section = ConfigLoader.toRedactedTree(cfg).path(reward ? "reward" : "train");
    Lora lora = loraOf(section.path("peft"));
    String mixed = section.path("mixed_precision").asText("no").toLowerCase(Locale.ROOT);
    int sequence = cfg.prepare().maxLength();
    // Every loss type runs the reference, reference_free too (its rewards use it, as in TRL).
    boolean inLoop = !reward && cfg.train().referenceMode() == TrainSettings.ReferenceMode.IN_LOOP;
    String referenceDtype = cfg.reference().dtype().equals("auto") ? storedDtype(model) : cfg.reference().dtype();
    // A reward model's LoRA base loads in float32 (CausalLM.loadScorer).
    String baseDtype = reward ? "float32"
        : cfg.model().dtype().equals("auto") ? storedDtype(model) : cfg.model().dtype();
    long overhead = cfg.model().device().startsWith("gpu") ? GPU_OVERHEAD_BYTES : CPU_OVERHEAD_BYTES;
    return new Job(model, baseDtype, lora, t.gradientCheckpointing(), mixed,
        inLoop ? Reference.IN_LOOP : Reference.NONE, referenceDtype, t.perDeviceTrainBatchSize(),
        t.gradientAccumulationSteps(), sequence, responseLength == null ? Math.max(1, sequence - 1) : responseLength,
        workers == null ? t.workers() : workers, t.allreduceBucketBytes(), overhead, stage);
  }

  /** A bound {@code peft:} section as the planner's LoRA; null when absent or not {@code type: lora}. */
  static Lora loraOf(JsonNode peft) {
    if (peft.isMissingNode() || peft.isNull() || !"lora".equals(peft.path("type").asText())) {
      return null;
    }
    PeftSettings p;
    try {
      p = Json.MAPPER.treeToValue(peft, PeftSettings.class);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("train.peft: " + e.getOriginalMessage(), e);
    }
    return new Lora(p.r(), p.dropout(), p.targetModules(), p.modulesToSave());
  }

  /** The dtype {@code auto} loads a model of this config in (config.json's torch_dtype), as CausalLM resolves it. */
  static String storedDtype(ModelConfig model) {
    DataType t = CausalLM.resolveDtype("auto", model);
    return t == DataType.BFLOAT16 ? "bfloat16" : t == DataType.FLOAT16 ? "float16" : "float32";
  }

  /** Bytes per element of a dtype name as config.json and the config keys spell them. */
  public static int bytesOf(String dtype) {
    return switch (dtype == null ? "" : dtype) {
      case "float32", "f32" -> 4;
      case "bfloat16", "bf16", "float16", "f16", "fp16" -> 2;
      default -> throw new IllegalArgumentException("unknown dtype " + dtype + " (float32, bfloat16 or float16)");
    };
  }

  /** The plan of {@code job}. */
  public static MemoryPlan plan(Job job) {
    ModelConfig c = job.model();
    Shapes s = new Shapes(c);
    long params = c.numParameters();
    boolean lora = job.lora() != null;
    boolean mixed = !job.mixedPrecision().equals("no");
    List<MemoryPlan.Item> items = new ArrayList<>();

    // Lasting parts.
    long trainable;
    long largestTrainable;
    if (lora) {
      int base = bytesOf(job.baseDtype());
      items.add(new MemoryPlan.Item(WEIGHTS, params * base, String.format(Locale.ROOT,
          "%,d base parameters x %d bytes (%s, frozen)", params, base, job.baseDtype())));
      long adapter = s.loraParameters(job.lora());
      List<String> whole = savedModules(job);
      long saved = s.modulesToSaveParameters(whole);
      trainable = adapter + saved;
      largestTrainable = Math.max(s.largestLoraMatrix(job.lora()), s.largestSavedModule(whole));
      items.add(new MemoryPlan.Item(ADAPTERS, trainable * 4, String.format(Locale.ROOT,
          "r=%d on %s: %,d float32 parameters%s", job.lora().r(), String.join(",", job.lora().targetModules()),
          adapter, saved > 0 ? String.format(Locale.ROOT, " + %,d in modules_to_save %s", saved, whole) : "")));
      items.add(new MemoryPlan.Item(MASTER, 0, "none: the float32 adapters are their own master copy"));
    } else {
      trainable = params;
      largestTrainable = s.largestTensor();
      if (mixed) {
        items.add(new MemoryPlan.Item(WEIGHTS, s.matmulParameters() * 2, String.format(Locale.ROOT,
            "%,d matmul parameters x 2 bytes: the %s copies the step computes with", s.matmulParameters(),
            job.mixedPrecision())));
        items.add(new MemoryPlan.Item(MASTER, params * 4, String.format(Locale.ROOT,
            "%,d parameters x 4 bytes (float32)", params)));
      } else {
        items.add(new MemoryPlan.Item(WEIGHTS, params * 4, String.format(Locale.ROOT,
            "%,d parameters x 4 bytes (float32, trained in place)", params)));
        items.add(new MemoryPlan.Item(MASTER, 0, "none: the float32 weights are the master copy"));
      }
    }
    items.add(new MemoryPlan.Item(GRADIENTS, trainable * 4, String.format(Locale.ROOT,
        "%,d trainable parameters x 4 bytes (float32)", trainable)));
    items.add(new MemoryPlan.Item(OPTIMIZER, trainable * 8, String.format(Locale.ROOT,
        "AdamW: 2 float32 moments x %,d trainable parameters", trainable)));
    long reference = 0;
    String referenceHow;
    if (job.reference() == Reference.NONE) {
      referenceHow = "none: precomputed log-probs (or a reference-free loss)";
    } else if (lora) {
      referenceHow = "none: the base model with adapters disabled";
    } else {
      reference = params * bytesOf(job.referenceDtype());
      referenceHow = String.format(Locale.ROOT, "in-loop copy: %,d parameters x %d bytes (%s)", params,
          bytesOf(job.referenceDtype()), job.referenceDtype());
    }
    items.add(new MemoryPlan.Item(REFERENCE, reference, referenceHow));

    // Activations, phase by phase.
    List<MemoryPlan.Phase> phases = activationPhases(job, s, largestTrainable);
    MemoryPlan.Phase peak = phases.get(0);
    for (MemoryPlan.Phase p : phases) {
      if (p.bytes() > peak.bytes()) {
        peak = p;
      }
    }
    long tokens = 2L * job.batchSize() * job.sequenceLength();
    items.add(new MemoryPlan.Item(ACTIVATIONS, peak.bytes(), String.format(Locale.ROOT,
        "peak phase %s; micro-batch %d pairs x 2 x %d tokens = %,d tokens, %s%s",
        peak.name(), job.batchSize(), job.sequenceLength(), tokens,
        job.stage() == SessionSpec.Stage.REWARD ? "each scored at its last token"
            : job.responseLength() + " response rows per sequence",
        job.gradientCheckpointing() ? ", gradient checkpointing" : "")));
    long bucket = job.workers() > 1 ? Math.min(job.bucketBytes(), trainable * 4) : 0;
    items.add(new MemoryPlan.Item(ALLREDUCE, bucket, job.workers() > 1
        ? String.format(Locale.ROOT, "one bucket of min(allreduce_bucket_mb, gradients); %,d bytes all-reduced per "
            + "step", trainable * 4)
        : "none: one worker"));
    items.add(new MemoryPlan.Item(OVERHEAD, job.overheadBytes(), "JVM and libtorch runtime"));
    return new MemoryPlan(job, items, phases, peak.name());
  }

  /** Modules trained whole under LoRA: the configured ones, and a reward model's score head (PEFT's SEQ_CLS). */
  static List<String> savedModules(Job job) {
    List<String> whole = new ArrayList<>(job.lora().modulesToSave());
    if (job.stage() == SessionSpec.Stage.REWARD && !whole.contains(SCORE)) {
      whole.add(SCORE);
    }
    return whole;
  }

  /** A reward model's head, trained whole under LoRA. */
  static final String SCORE = "score";

  /** Activation bytes of each phase of a step (see the class comment). */
  static List<MemoryPlan.Phase> activationPhases(Job job, Shapes s, long largestTrainable) {
    ModelConfig c = job.model();
    boolean lora = job.lora() != null;
    boolean mixed = !job.mixedPrecision().equals("no");
    int act = mixed ? 2 : lora ? bytesOf(job.baseDtype()) : 4; // bytes of an activation (and gathered weight)
    boolean reward = job.stage() == SessionSpec.Stage.REWARD;
    long tokens = 2L * job.batchSize() * job.sequenceLength();
    long rows = 2L * job.batchSize() * job.responseLength();
    long scored = 2L * job.batchSize(); // reward: rows pooled into the score head
    long d = c.hiddenSize();
    long v = c.vocabSize();
    int layers = c.numHiddenLayers();

    Layer layer = s.layer(job.lora(), act);
    long gathered = s.gatheredWeightElements() * act; // per layer and pass
    long logits = rows * v * 4 + (act == 4 ? 0 : rows * v * act); // float32, plus the pre-cast copy
    long selected = rows * d * act;
    long finalNorm = tokens * 3 * d * act; // last residual, normalised, times weight (the hidden states)
    long layerBackward = tokens * layer.backwardTransient();

    long trunkAll;
    long trunkSaved;
    long recompute = 0;
    if (job.gradientCheckpointing()) {
      // Each layer's input and the top leaf stay; layers run one at a time without graph, and in backward each is
      // re-run with graph from its input while the inputs below it wait.
      long kept = tokens * (layers + 1) * d * act;
      trunkSaved = kept;
      trunkAll = kept + tokens * layer.noGradAll() + gathered;
      recompute = tokens * layers * d * act + tokens * layer.all() + gathered + layerBackward + tokens * d * 4;
    } else {
      trunkSaved = tokens * layers * layer.saved() + layers * gathered;
      trunkAll = tokens * layers * layer.all() + layers * gathered;
    }
    List<MemoryPlan.Phase> phases = new ArrayList<>();
    phases.add(new MemoryPlan.Phase("trunk forward", trunkAll + finalNorm));
    if (reward) {
      // The pooled hidden states [2B, d] and their scores (float32, plus the compute-dtype copy): no logits.
      long head = scored * d * act + scored * (4 + act);
      phases.add(new MemoryPlan.Phase("score head forward", trunkSaved + finalNorm + head));
      long headBackward = trunkSaved + head + scored * d * 4 + largestTrainable * 4;
      phases.add(new MemoryPlan.Phase("backward", job.gradientCheckpointing() ? Math.max(headBackward, recompute)
          : trunkSaved + Math.max(head + scored * d * 4 + largestTrainable * 4, layerBackward)));
      phases.add(new MemoryPlan.Phase("optimizer step", 2 * largestTrainable * 4));
      return phases;
    }
    phases.add(new MemoryPlan.Phase("LM head forward", trunkSaved + finalNorm + selected + logits + rows * v * 4));
    if (job.reference() == Reference.IN_LOOP) {
      int ref = lora ? bytesOf(job.baseDtype()) : bytesOf(job.referenceDtype());
      long refAll = tokens * (layers * s.layer(null, ref).noGradAll() + 3 * d * ref) + layers
          * s.gatheredWeightElements() * ref + 2L * Math.min(rows, HEAD_CHUNK_ROWS) * v * 4 + rows * d * ref;
      phases.add(new MemoryPlan.Phase("reference forward", trunkSaved + selected + logits + refAll));
    }
    long headBackward = trunkSaved + selected + 4 * rows * v * 4 + largestTrainable * 4;
    phases.add(new MemoryPlan.Phase("backward", job.gradientCheckpointing() ? Math.max(headBackward, recompute)
        : trunkSaved + Math.max(selected + 4 * rows * v * 4 + largestTrainable * 4, layerBackward)));
    phases.add(new MemoryPlan.Phase("optimizer step", 2 * largestTrainable * 4));
    return phases;
  }

  /**
   * Bytes per token of one decoder layer: {@code all} alive when a recorded forward's scope ends, {@code saved} what
   * autograd keeps after it, {@code noGradAll} alive at the end of a forward without graph, and the gradients a
   * layer's backward holds at once.
   */
  record Layer(long all, long saved, long noGradAll, long backwardTransient) {}

  /**
   * When {@code plan} does not fit in {@code deviceBytes}: settings that would, smallest first (the single changes,
   * then combinations); empty when it fits. If nothing fits, the smallest plan found is still listed.
   */
  public static List<Suggestion> suggestions(MemoryPlan plan, long deviceBytes) {
    if (plan.totalBytes() <= deviceBytes) {
      return List.of();
    }
    Job job = plan.job();
    List<Suggestion> candidates = new ArrayList<>();
    Lora lora16 = Lora.allLinear(16);
    if (job.lora() == null) {
      candidates.add(suggestion("peft lora r=16 (all linear layers)", job.withLora(lora16)));
      if (job.reference() == Reference.IN_LOOP) {
        candidates.add(suggestion("reference_mode precomputed", job.withReference(Reference.NONE)));
      }
    }
    if (!job.gradientCheckpointing()) {
      candidates.add(suggestion("gradient_checkpointing true", job.withGradientCheckpointing(true)));
    }
    if (job.mixedPrecision().equals("no")) {
      candidates.add(suggestion("mixed_precision bf16", job.withMixedPrecision("bf16")));
    }
    for (int size = job.batchSize() / 2; size >= 1; size /= 2) {
      Job smaller = job.withBatchSize(size);
      candidates.add(suggestion("per_device_train_batch_size " + size + " + gradient_accumulation_steps "
          + smaller.gradientAccumulationSteps(), smaller));
    }
    Job lean = (job.lora() == null ? job.withLora(lora16) : job).withGradientCheckpointing(true);
    candidates.add(suggestion((job.lora() == null ? "peft lora r=16 + " : "") + "gradient_checkpointing true", lean));
    Job leanest = lean.withBatchSize(1);
    candidates.add(suggestion((job.lora() == null ? "peft lora r=16 + " : "") + "gradient_checkpointing true + "
        + "per_device_train_batch_size 1 + gradient_accumulation_steps " + leanest.gradientAccumulationSteps(),
        leanest));
    List<Suggestion> fitting = new ArrayList<>();
    Suggestion smallest = candidates.get(0);
    for (Suggestion sg : candidates) {
      if (sg.plan().totalBytes() <= deviceBytes
          && fitting.stream().noneMatch(f -> f.change().equals(sg.change()))) {
        fitting.add(sg);
      }
      if (sg.plan().totalBytes() < smallest.plan().totalBytes()) {
        smallest = sg;
      }
    }
    if (fitting.isEmpty()) {
      return List.of(smallest);
    }
    // Single changes in the order above first (least disruptive), each fitting; combinations only when needed.
    return List.copyOf(fitting);
  }

  private static Suggestion suggestion(String change, Job job) {
    return new Suggestion(change, plan(job));
  }

  /** Element counts of the model's tensors and of its per-token activations. */
  static final class Shapes {
    final ModelConfig c;
    final long d;
    final long q;
    final long kv;
    final long inter;
    final boolean grouped;

    Shapes(ModelConfig c) {
      this.c = c;
      this.d = c.hiddenSize();
      this.q = (long) c.numAttentionHeads() * c.headDim();
      this.kv = (long) c.numKeyValueHeads() * c.headDim();
      this.inter = c.intermediateSize();
      this.grouped = c.numAttentionHeads() != c.numKeyValueHeads();
    }

    /**
     * One decoder layer's bytes per token (see {@link Layer}) with activations of {@code act} bytes. Float32, by
     * CausalLM's code: norms (normalised, times weight) 2 d each; q_proj, rotated q, attention output 3 q; k_proj,
     * rotated k, v 3 kv; keys and values repeated to every head 2 q (grouped-query attention); o_proj and down_proj
     * outputs and two residual sums 4 d; gate, up, silu(gate), their product 4 I (silu's is a temporary without
     * graph). Autograd keeps the layer input and mid residual, both norms' two arrays, rotated q, the keys and
     * values the attention read, its output and 4 I. In a 16-bit dtype each RMSNorm also holds a float32 copy of
     * its input and its float32 normalisation (4 d + 4 d, the copy saved) and rotary embeddings take the explicit ops
     * (6 halves and a concatenation: 4 q and 4 kv instead of q and kv). LoRA adds, per adapted linear layer
     * (see {@link #adapter}), and freezes the norm weights (their normalised inputs are no longer saved).
     */
    Layer layer(Lora lora, int act) {
      long heads = c.numAttentionHeads();
      boolean wide = act == 4;
      long rope = wide ? q + kv : 4 * q + 4 * kv;
      long norms = wide ? 4 * d * act : 2 * (2 * d * act + 8 * d);
      long all = norms + act * (2 * q + 2 * kv + rope + (grouped ? 2 * q : 0) + 4 * d + 4 * inter)
          + 4 * (heads + 10);
      long noGrad = all - act * inter;
      long attention = act * (2 * q + (grouped ? 2 * q : 2 * kv)) + 4 * (heads + 10);
      long saved;
      if (lora == null) {
        saved = (wide ? 6 * d * act : 2 * d * act + 2 * (d * act + 4 * d)) + attention + 4 * inter * act;
      } else {
        long adapters = 0;
        long adaptersSaved = 0;
        for (String m : lora.targetModules()) {
          adapters += adapter(lora, m, act)[0];
          adaptersSaved += adapter(lora, m, act)[1];
        }
        all += adapters;
        // Residuals (float32: the norms keep them; 16-bit: their float32 copies), norm outputs as adapter inputs
        // (float32 only: 16-bit adapters keep float32 copies instead), attention, gate, up, silu(gate) (+ product).
        saved = (wide ? 4 * d * act + 4 * inter * act : 2 * 4 * d + 3 * inter * act) + attention + adaptersSaved;
      }
      return new Layer(all, saved, noGrad, act * (3 * inter + 2 * d));
    }

    /**
     * Bytes per token LoRA adds to one adapted linear layer {@code module}: {all, saved}. As CausalLM computes
     * {@code y + scaling * B (A dropout(x))} with float32 adapters, closing every intermediate once the sum exists:
     * what stays is what autograd keeps, A x [r] (B's input; A's input is the layer input, kept anyway) and, with a
     * 16-bit base, the float32 copy of the input [in]; the sum replaces the base output. Dropout adds its output and
     * mask, both kept.
     */
    long[] adapter(Lora lora, String module, int act) {
      long in = inDim(module);
      long dropout = lora.dropout() > 0 ? 2 * 4 * in : 0;
      if (act == 4) {
        return new long[] {4 * lora.r() + dropout, 4 * lora.r() + dropout};
      }
      return new long[] {4 * (in + lora.r()) + dropout, 4 * (in + lora.r()) + dropout};
    }

    /** q_proj and k_proj rows gathered into rotary order per pass, per layer. */
    long gatheredWeightElements() {
      return (q + kv) * d;
    }

    long outDim(String module) {
      return switch (module) {
        case "q_proj" -> q;
        case "k_proj", "v_proj" -> kv;
        case "o_proj", "down_proj" -> d;
        case "gate_proj", "up_proj" -> inter;
        default -> throw new IllegalArgumentException(module);
      };
    }

    long inDim(String module) {
      return switch (module) {
        case "o_proj" -> q;
        case "down_proj" -> inter;
        case "q_proj", "k_proj", "v_proj", "gate_proj", "up_proj" -> d;
        default -> throw new IllegalArgumentException(module);
      };
    }

    long loraParameters(Lora lora) {
      long perLayer = 0;
      for (String m : lora.targetModules()) {
        perLayer += (long) lora.r() * (inDim(m) + outDim(m));
      }
      return perLayer * c.numHiddenLayers();
    }

    long largestLoraMatrix(Lora lora) {
      long max = 0;
      for (String m : lora.targetModules()) {
        max = Math.max(max, (long) lora.r() * Math.max(inDim(m), outDim(m)));
      }
      return max;
    }

    /** Trainable float32 copies of lm_head / embed_tokens ([V, d]) and a reward model's score head ([1, d]). */
    long modulesToSaveParameters(List<String> modules) {
      long n = 0;
      for (String m : modules) {
        n += savedModuleParameters(m);
      }
      return n;
    }

    long largestSavedModule(List<String> modules) {
      long max = 0;
      for (String m : modules) {
        max = Math.max(max, savedModuleParameters(m));
      }
      return max;
    }

    private long savedModuleParameters(String module) {
      return module.equals(SCORE) ? d : (long) c.vocabSize() * d;
    }

    /** Parameters that take part in matmuls (all but the norms). */
    long matmulParameters() {
      return c.numParameters() - (2L * c.numHiddenLayers() + 1) * d;
    }

    long largestTensor() {
      return Math.max((long) c.vocabSize() * d, Math.max(inter * d, q * d));
    }
  }
}
