package io.sparkdpo.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Parameter;
import io.sparkdpo.config.ModelSettings;
import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.io.Storage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * A decoder-only transformer of the Llama family (Llama, Qwen2, Mistral), the whole model in this one file:
 * token embedding, {@code num_hidden_layers} pre-norm blocks of grouped-query attention with rotary position
 * embeddings and a SwiGLU MLP, a final RMSNorm and the LM head (optionally tied to the embedding).
 *
 * <p>Parameters are plain DJL {@link Parameter}s named and ordered exactly as Hugging Face's state dict, so
 * checkpoints map one to one, gradients are read per parameter, and a flat gradient buffer can be laid out
 * in {@link #parameters()} order. They live in the model's own {@link NDManager}; every forward pass works in
 * a sub-manager of the caller's input array and hands back only its result, so nothing accumulates on the
 * model. Forward passes only read parameters, so several threads may run inference on one model at once.
 *
 * <p>Parameters are float32, bfloat16 or float16 ({@link #dtype()}); the maths follows transformers' dtype flow:
 * RMSNorm in float32, cast back before the weight; rotary cos/sin cast to the activations' dtype; attention and
 * linears in the model's dtype; logits handed out in float32. Float32 parameters can run their matmuls in bfloat16 or
 * float16 ({@link #computeDtype(DataType)}, mixed precision).
 *
 * <p>LoRA ({@link #addLora}, {@link #loadAdapter}): float32 low-rank adapters that the linear layers consult
 * ({@link Lora}, PEFT's LoraLayer), the base frozen, switched per thread by {@link #adapters(AdapterMode)}; adapter
 * folders and merged exports in PEFT's format.
 */
public final class CausalLM implements AutoCloseable {
  public static final String BUILTIN_TINY = "builtin:tiny";
  /** The seed of {@code model.seed} in defaults.yaml, used when a caller gives none. */
  public static final long DEFAULT_SEED = 1234L;
  /** Classpath folder of the built-in tokenizer (packaged from sample-data/tokenizer). */
  public static final String BUILTIN_TOKENIZER = "io/sparkdpo/builtin/tokenizer/";
  /** Additive bias of a masked key: finite, so a row with every key masked (left padding) yields no NaN. */
  static final float MASKED = -1e30f;
  private static final String INIT_SCHEME = "init v1: normal(0, initializer_range) per parameter "
      + "from SplittableRandom(seed ^ name.hashCode()), zero biases, unit norms";

  private final ModelConfig config;
  private final Device device;
  private final NDManager manager;
  private final DataType dtype;
  private final LinkedHashMap<String, Parameter> parameters = new LinkedHashMap<>();
  private String fingerprint; // set once: by the constructor, or by load after the weights streamed in
  private final ModelFolder.Companions companions;
  private WeightSource weights; // only while constructing
  private final boolean builtin;
  private volatile boolean fused = true;
  /** The folder or built-in name the weights came from (an adapter's base_model_name_or_path); null if random. */
  private String origin;
  /** LoRA adapters (see {@link Lora}): the trained set, a frozen reference set, and which one this thread uses. */
  private Lora trained;
  private Lora reference;
  private boolean baseFrozen;
  private final ThreadLocal<AdapterMode> adapterMode = ThreadLocal.withInitial(() -> AdapterMode.TRAINED);
  private volatile DataType computeDtype; // set: mixed precision (see computeDtype(DataType)); null: dtype
  /** The activation checkpoints this thread's training passes feed, while a caller holds them open. */
  private final ThreadLocal<ActivationCheckpoints> checkpointing = new ThreadLocal<>();

  private final Parameter embedTokens;
  private final List<DecoderLayer> layers = new ArrayList<>();
  private final Parameter finalNorm;
  private final Parameter lmHead;
  /** A reward model's scalar head [1, d] ({@code score.weight}, no bias); null for a causal LM. */
  private final Parameter score;
  /** Rotary inverse frequencies (config.json's rope_theta and rope_scaling), see {@link RopeScaling}. */
  private final float[] ropeInverseFrequencies;

  /** Where each parameter's initial values come from (random init or a checkpoint). */
  @FunctionalInterface
  private interface WeightSource {
    NDArray create(NDManager manager, String name, Shape shape, Kind kind);
  }

  private enum Kind { MATRIX, BIAS, NORM }

  private CausalLM(ModelConfig config, Device device, DataType dtype, WeightSource weights, String fingerprint,
      ModelFolder.Companions companions, boolean builtin) {
    this.config = config;
    this.ropeInverseFrequencies = config.ropeScaling().inverseFrequencies(config.ropeTheta(), config.headDim());
    this.device = device;
    this.dtype = dtype;
    this.fingerprint = fingerprint;
    this.companions = companions;
    this.builtin = builtin;
    this.weights = weights;
    this.manager = NDManager.newBaseManager(device, "PyTorch");
    try {
      int d = config.hiddenSize();
      embedTokens = param("model.embed_tokens.weight", new Shape(config.vocabSize(), d), Kind.MATRIX);
      for (int i = 0; i < config.numHiddenLayers(); i++) {
        layers.add(new DecoderLayer("model.layers." + i + "."));
      }
      finalNorm = param("model.norm.weight", new Shape(d), Kind.NORM);
      // transformers' *ForSequenceClassification has no LM head, only the score head.
      lmHead = config.tieWordEmbeddings() || config.scoresSequences() ? null
          : param("lm_head.weight", new Shape(config.vocabSize(), d), Kind.MATRIX);
      score = config.scoresSequences() ? param("score.weight", new Shape(1, d), Kind.MATRIX) : null;
      // Only float32 weights train; lower precisions stay frozen (LoRA adapters, float32, train beside them).
      if (dtype == DataType.FLOAT32) {
        for (Parameter p : parameters.values()) {
          p.getArray().setRequiresGradient(true);
        }
      }
      this.weights = null;
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Construction and checkpoints

  /** A randomly initialised float32 model; same config and seed give the same weights on any machine. */
  public static CausalLM create(ModelConfig config, Device device, long seed) {
    return create(config, device, seed, false, DataType.FLOAT32);
  }

  /** As {@link #create(ModelConfig, Device, long)}, the float32 initial values rounded to {@code dtype}. */
  public static CausalLM create(ModelConfig config, Device device, long seed, DataType dtype) {
    return create(config, device, seed, false, dtype);
  }

  private static CausalLM create(ModelConfig config, Device device, long seed, boolean builtin, DataType dtype) {
    checkDtype(dtype);
    WeightSource init = (m, name, shape, kind) -> {
      SplittableRandom random = new SplittableRandom(seed ^ (long) name.hashCode() * 0x9E3779B97F4A7C15L);
      java.util.function.DoubleSupplier next = switch (kind) {
        case NORM -> () -> 1.0;
        case BIAS -> () -> 0.0;
        case MATRIX -> () -> random.nextGaussian() * config.initializerRange();
      };
      NDArray float32;
      if (shape.size() * Float.BYTES <= sliceBytes || !Device.cpu().equals(m.getDevice())) {
        float[] values = new float[Math.toIntExact(shape.size())];
        for (int i = 0; i < values.length; i++) {
          values[i] = (float) next.getAsDouble();
        }
        float32 = m.create(values, shape);
      } else {
        // Over a DJL buffer's 2 GiB: filled in row slices, the values in the same order as above.
        float32 = Casts.empty(m, shape, DataType.FLOAT32);
        forEachSlice(float32, Float.BYTES, slice -> {
          java.nio.FloatBuffer f = slice.asFloatBuffer();
          while (f.hasRemaining()) {
            f.put((float) next.getAsDouble());
          }
        });
      }
      if (dtype == DataType.FLOAT32) {
        return float32;
      }
      try (float32) {
        return Casts.to(float32, dtype);
      }
    };
    String fp = randomInitFingerprint(config, seed);
    return new CausalLM(config, device, dtype, init, fp,
        builtin ? ModelFolder.Companions.classpath(BUILTIN_TOKENIZER) : ModelFolder.Companions.none(), builtin);
  }

  private static String randomInitFingerprint(ModelConfig config, long seed) {
    return sha256Hex("random init\n" + config.toJson() + "seed=" + seed + "\n" + INIT_SCHEME);
  }

  /**
   * The {@link #fingerprint()} the model {@link #load(String, Storage, Device, long)} would load, without loading
   * it: a driver names the model its executors must load (a folder is hashed, not read into tensors).
   */
  public static String fingerprintOf(String folderOrBuiltin, Storage storage, long builtinSeed) {
    if (folderOrBuiltin.equals(BUILTIN_TINY)) {
      return randomInitFingerprint(ModelConfig.tiny(), builtinSeed);
    }
    if (folderOrBuiltin.startsWith("builtin:")) {
      throw new IllegalArgumentException("unknown built-in model " + folderOrBuiltin + " (known: " + BUILTIN_TINY + ")");
    }
    return ModelFolder.fingerprint(storage, folderOrBuiltin);
  }

  /** {@link #load(String, Storage, Device, long)} with {@link #DEFAULT_SEED} for built-in models. */
  public static CausalLM load(String folderOrBuiltin, Storage storage, Device device) {
    return load(folderOrBuiltin, storage, device, DEFAULT_SEED);
  }

  /** The model of a {@code model:} config section: its path, device, seed and dtype. */
  public static CausalLM load(ModelSettings settings, Storage storage) {
    DataType dtype = settings.dtype().equals("auto") ? null : resolveDtype(settings.dtype(), null);
    return load(settings.path(), storage, device(settings.device()), settings.seed(), dtype);
  }

  /** {@link #load(String, Storage, Device, long, DataType)} in the dtype config.json names ({@code auto}). */
  public static CausalLM load(String folderOrBuiltin, Storage storage, Device device, long builtinSeed) {
    return load(folderOrBuiltin, storage, device, builtinSeed, null);
  }

  /**
   * Loads {@code builtin:tiny} (the tiny config, initialised from {@code builtinSeed}, with the built-in
   * tokenizer as its companion files) or a Hugging Face model folder (local, hdfs:, s3a:) with parameters in
   * {@code dtype} (FLOAT32, BFLOAT16 or FLOAT16; null: config.json's {@code torch_dtype}, float32 for built-in
   * models). Headers are checked first: missing, unexpected or misshapen tensors fail naming file and tensor
   * before anything is allocated. Then each tensor streams from its file straight into its parameter's native
   * memory, converted on the way: Java holds one chunk, never a tensor or a file.
   */
  public static CausalLM load(String folderOrBuiltin, Storage storage, Device device, long builtinSeed,
      DataType dtype) {
    if (folderOrBuiltin.equals(BUILTIN_TINY)) {
      CausalLM tiny = create(ModelConfig.tiny(), device, builtinSeed, true, dtype == null ? DataType.FLOAT32 : dtype);
      tiny.origin = BUILTIN_TINY;
      return tiny;
    }
    if (folderOrBuiltin.startsWith("builtin:")) {
      throw new IllegalArgumentException("unknown built-in model " + folderOrBuiltin + " (known: " + BUILTIN_TINY + ")");
    }
    String folder = folderOrBuiltin;
    ModelConfig config = ModelFolder.readConfig(storage, folder);
    DataType type = dtype == null ? resolveDtype("auto", config) : dtype;
    checkDtype(type);
    Map<String, ModelFolder.Located> headers = ModelFolder.headers(storage, folder);
    CausalLM model = new CausalLM(config, device, type, (m, name, shape, kind) -> Casts.empty(m, shape, type), null,
        ModelFolder.Companions.folder(storage, folder), false);
    try {
      model.checkTensors(folder, headers);
      model.fingerprint = ModelFolder.readWeights(storage, folder, (file, entry, data) -> {
        Parameter p = model.parameters.get(entry.name());
        if (p != null) {
          model.fill(p.getArray(), data);
        }
      });
      model.origin = folder;
    } catch (RuntimeException e) {
      model.close();
      throw e;
    }
    return model;
  }

  /**
   * A reward model to train: a folder or built-in that already is a one-label sequence classifier loads as it is
   * (float32); a causal LM (pi_SFT) loads as {@code AutoModelForSequenceClassification.from_pretrained(path,
   * num_labels=1)} does it: its decoder weights, no LM head, and a new {@code score} head drawn from normal(0,
   * initializer_range) with {@code seed} ({@link ModelConfig#asSequenceClassifier} for the config). The fingerprint
   * of a converted model covers the folder's and the head's seed.
   */
  public static CausalLM loadScorer(String folderOrBuiltin, Storage storage, Device device, long seed) {
    if (folderOrBuiltin.equals(BUILTIN_TINY)) {
      CausalLM tiny = create(ModelConfig.tiny().asSequenceClassifier(), device, seed, true, DataType.FLOAT32);
      tiny.origin = BUILTIN_TINY;
      return tiny;
    }
    if (folderOrBuiltin.startsWith("builtin:")) {
      throw new IllegalArgumentException("unknown built-in model " + folderOrBuiltin + " (known: " + BUILTIN_TINY + ")");
    }
    String folder = folderOrBuiltin;
    ModelConfig causal = ModelFolder.readConfig(storage, folder);
    if (causal.scoresSequences()) {
      return load(folder, storage, device, seed, DataType.FLOAT32);
    }
    Map<String, ModelFolder.Located> headers = ModelFolder.headers(storage, folder);
    SplittableRandom random = new SplittableRandom(seed ^ (long) "score.weight".hashCode() * 0x9E3779B97F4A7C15L);
    CausalLM model = new CausalLM(causal.asSequenceClassifier(), device, DataType.FLOAT32, (m, name, shape, kind) -> {
      if (!name.equals("score.weight")) {
        return Casts.empty(m, shape, DataType.FLOAT32);
      }
      float[] values = new float[Math.toIntExact(shape.size())];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) (random.nextGaussian() * causal.initializerRange());
      }
      return m.create(values, shape);
    }, null, ModelFolder.Companions.folder(storage, folder), false);
    try {
      model.checkTensors(folder, headers, Set.of("score.weight"), Set.of("lm_head.weight"));
      String weights = ModelFolder.readWeights(storage, folder, (file, entry, data) -> {
        Parameter p = model.parameters.get(entry.name());
        if (p != null && !entry.name().equals("score.weight")) {
          model.fill(p.getArray(), data);
        }
      });
      model.fingerprint = sha256Hex("sequence classifier of " + weights + "\nscore head seed=" + seed + "\n"
          + INIT_SCHEME);
      model.origin = folder;
    } catch (RuntimeException e) {
      model.close();
      throw e;
    }
    return model;
  }

  /**
   * The checks a folder's tensors must pass against this model, from their headers alone: every parameter
   * present with its shape, nothing else but what transformers itself ignores (a tied model's
   * {@code lm_head.weight}, old {@code rotary_emb.inv_freq} buffers).
   */
  private void checkTensors(String folder, Map<String, ModelFolder.Located> headers) {
    checkTensors(folder, headers, Set.of(), Set.of());
  }

  /** As above; {@code fresh} parameters are not read from the folder, {@code dropped} tensors are not loaded. */
  private void checkTensors(String folder, Map<String, ModelFolder.Located> headers, Set<String> fresh,
      Set<String> dropped) {
    for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
      String name = e.getKey();
      if (fresh.contains(name)) {
        continue;
      }
      Shape shape = e.getValue().getArray().getShape();
      ModelFolder.Located t = headers.get(name);
      if (t == null) {
        throw new IllegalArgumentException(folder + ": tensor " + name + " is missing (expected shape " + shape
            + " for " + config.architecture() + ")");
      }
      if (!Arrays.equals(t.entry().shape(), shape.getShape())) {
        throw new IllegalArgumentException(t.file() + ": tensor " + name + " has shape "
            + Arrays.toString(t.entry().shape()) + " but config.json implies " + shape);
      }
    }
    List<String> unexpected = new ArrayList<>();
    for (String name : headers.keySet()) {
      boolean ignored = name.endsWith("rotary_emb.inv_freq") || dropped.contains(name)
          || (config.tieWordEmbeddings() && name.equals("lm_head.weight"));
      if (!parameters.containsKey(name) && !ignored) {
        unexpected.add(name);
      }
    }
    if (!unexpected.isEmpty()) {
      String name = unexpected.get(0);
      throw new IllegalArgumentException(headers.get(name).file() + ": unexpected tensor " + name
          + " (not part of a " + config.architecture() + " with this config.json; " + unexpected.size()
          + " unexpected in all)");
    }
  }

  /**
   * Replaces every parameter's values with those of a model folder of the same config, in place: the
   * {@link Parameter} and {@link NDArray} objects stay the same (so an optimizer holding them keeps working),
   * the replaced native tensors are freed, and gradients stay switched on. The folder's headers are checked
   * before any value changes; values stream in one tensor at a time, converted to this model's dtype.
   */
  public void loadWeights(String folder, Storage storage) {
    ModelConfig other = ModelFolder.readConfig(storage, folder);
    if (!other.sameTensors(config)) {
      throw new IllegalArgumentException(folder + ": config.json describes other tensors than the loaded model's");
    }
    Map<String, ModelFolder.Located> headers = ModelFolder.headers(storage, folder);
    for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
      ModelFolder.Located t = headers.get(e.getKey());
      NDArray target = e.getValue().getArray();
      if (t == null) {
        throw new IllegalArgumentException(folder + ": tensor " + e.getKey() + " is missing");
      }
      if (!Arrays.equals(t.entry().shape(), target.getShape().getShape())) {
        throw new IllegalArgumentException(t.file() + ": tensor " + e.getKey() + " has shape "
            + Arrays.toString(t.entry().shape()) + ", the model has " + target.getShape());
      }
    }
    ModelFolder.readWeights(storage, folder, (file, entry, data) -> {
      Parameter p = parameters.get(entry.name());
      if (p == null) {
        return;
      }
      NDArray target = p.getArray();
      NDArray fresh = Casts.empty(manager, target.getShape(), dtype);
      try {
        fill(fresh, data);
      } catch (RuntimeException ex) {
        fresh.close();
        throw ex;
      }
      target.intern(fresh);
      if (dtype == DataType.FLOAT32 && !baseFrozen) {
        target.setRequiresGradient(true);
      }
    });
  }

  /** Streams one tensor's values into {@code target} (this model's dtype), row slice by row slice. */
  private void fill(NDArray target, Safetensors.TensorReader data) {
    fill(target, data, dtype);
  }

  /** As {@link #fill(NDArray, Safetensors.TensorReader)} into an array of {@code type}. */
  private void fill(NDArray target, Safetensors.TensorReader data, DataType type) {
    Safetensors.Dtype as = fileDtype(type);
    try (NoGrad ignored = NoGrad.enter()) {
      if (Device.cpu().equals(device)) {
        forEachSlice(target, as.bytes, slice -> data.read(slice, as));
        return;
      }
      // Other devices: through a host copy of this one tensor (toByteBuffer of a device array is a copy).
      try (NDManager host = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
        NDArray staged = Casts.empty(host, target.getShape(), type);
        forEachSlice(staged, as.bytes, slice -> data.read(slice, as));
        NDArray moved = staged.toDevice(device, true);
        moved.attach(manager);
        target.intern(moved);
      }
    }
  }

  /**
   * Largest slice of a tensor's memory handed out at once (DJL's buffers are int-indexed, so a tensor over
   * 2 GiB goes in several). Package-private so tests can force many slices on small tensors.
   */
  static long sliceBytes = 1L << 30;

  /**
   * Calls {@code action} with native-order direct buffers that alias consecutive row ranges of {@code array}
   * (contiguous, on the CPU), each at most {@link #sliceBytes} (at least one row), together covering it all.
   * A contiguous row range of a contiguous tensor is a contiguous view, and DJL's {@code toByteBuffer(true)}
   * of a contiguous CPU tensor is a buffer over its memory (checked: writes through a slice's buffer land in
   * the tensor, see CheckpointTest).
   */
  static void forEachSlice(NDArray array, int elementBytes, Consumer<ByteBuffer> action) {
    Shape shape = array.getShape();
    long numel = shape.size();
    if (numel == 0) {
      return;
    }
    if (shape.dimension() == 0 || numel * elementBytes <= sliceBytes) {
      action.accept(alias(array, numel * elementBytes));
      return;
    }
    long rows = shape.get(0);
    long rowBytes = numel / rows * elementBytes;
    long perSlice = Math.max(1, sliceBytes / rowBytes);
    for (long r = 0; r < rows; r += perSlice) {
      long end = Math.min(rows, r + perSlice);
      try (NDArray view = array.get(new NDIndex(r + ":" + end))) {
        action.accept(alias(view, (end - r) * rowBytes));
      }
    }
  }

  private static ByteBuffer alias(NDArray array, long bytes) {
    ByteBuffer b = array.toByteBuffer(true);
    if (!b.isDirect() || b.capacity() != bytes) {
      throw new IllegalStateException("tensor memory is not reachable as one buffer (" + b.capacity() + " bytes, "
          + "expected " + bytes + ")");
    }
    return b.order(ByteOrder.nativeOrder());
  }

  /**
   * Writes the model as a Hugging Face folder: weights in {@code dtype} (FLOAT32, BFLOAT16 or FLOAT16), config.json,
   * generation_config.json and, when the model came from a folder or is built in, its tokenizer files.
   */
  public void save(String folder, Storage storage, DataType dtype) {
    save(folder, storage, dtype, ModelFolder.DEFAULT_MAX_SHARD_BYTES);
  }

  /** {@link #save(String, Storage, DataType)} with shards of at most {@code maxShardBytes}. */
  public void save(String folder, Storage storage, DataType dtype, long maxShardBytes) {
    Safetensors.Dtype fileDtype = fileDtype(dtype);
    if (builtin && companions.read("tokenizer.json").isEmpty()) {
      // A built-in model saved without its tokenizer would be a folder nothing downstream can use.
      throw new IllegalStateException("cannot save " + BUILTIN_TINY + ": the built-in tokenizer ("
          + BUILTIN_TOKENIZER + "tokenizer.json) is not on the classpath; the jar must package sample-data/tokenizer");
    }
    Safetensors.Dtype held = fileDtype(this.dtype);
    List<Safetensors.Tensor> tensors = new ArrayList<>();
    parameters.forEach((name, p) -> tensors.add(new Safetensors.Tensor(name, p.getArray().getShape().getShape(),
        held, slices -> {
          if (Device.cpu().equals(device)) {
            forEachSlice(p.getArray(), held.bytes, slices);
            return;
          }
          try (NDArray host = p.getArray().toDevice(Device.cpu(), true)) {
            forEachSlice(host, held.bytes, slices);
          }
        })));
    ModelFolder.write(storage, folder, config, tensors, fileDtype, maxShardBytes, companions);
  }

  /** The save dtype of {@code model.save_dtype} ({@code float32}, {@code bfloat16} or {@code float16}). */
  public static DataType saveDtype(String name) {
    return switch (name) {
      case "float32" -> DataType.FLOAT32;
      case "bfloat16" -> DataType.BFLOAT16;
      case "float16" -> DataType.FLOAT16;
      default -> throw new IllegalArgumentException("save dtype must be float32, bfloat16 or float16 (got " + name
          + ")");
    };
  }

  /**
   * The parameter dtype of a {@code model.dtype} setting: {@code float32}, {@code bfloat16}, {@code float16}, or
   * {@code auto}, which takes config.json's {@code dtype} (newer transformers) or {@code torch_dtype} (float32
   * when neither is there, or for a built-in model, whose {@code config} is null).
   */
  public static DataType resolveDtype(String setting, ModelConfig config) {
    String name = setting;
    String source = "model.dtype";
    if (setting.equals("auto")) {
      if (config == null) {
        return DataType.FLOAT32;
      }
      com.fasterxml.jackson.databind.JsonNode newer = config.extra().get("dtype");
      name = newer != null && newer.isTextual() ? newer.asText() : config.torchDtype();
      source = "config.json's torch_dtype";
    }
    return switch (name) {
      case "float32", "float" -> DataType.FLOAT32;
      case "bfloat16" -> DataType.BFLOAT16;
      case "float16", "half" -> DataType.FLOAT16;
      default -> throw new IllegalArgumentException(source + " must be float32, bfloat16 or float16 (got " + name
          + "); set model.dtype to one of them to load in another dtype");
    };
  }

  private static void checkDtype(DataType dtype) {
    fileDtype(dtype);
  }

  /** The safetensors dtype of a parameter dtype. */
  static Safetensors.Dtype fileDtype(DataType dtype) {
    return switch (dtype) {
      case FLOAT32 -> Safetensors.Dtype.F32;
      case BFLOAT16 -> Safetensors.Dtype.BF16;
      case FLOAT16 -> Safetensors.Dtype.F16;
      default -> throw new IllegalArgumentException("model dtype must be FLOAT32, BFLOAT16 or FLOAT16 (got " + dtype
          + ")");
    };
  }

  /** {@code cpu}, {@code gpu} (the first GPU) or {@code gpu:N}; a GPU that PyTorch cannot see is an error. */
  public static Device device(String spec) {
    if (spec.equals("cpu")) {
      return Device.cpu();
    }
    if (spec.matches("gpu(:\\d+)?")) {
      int id = spec.equals("gpu") ? 0 : Integer.parseInt(spec.substring(4));
      int visible = Engine.getEngine("PyTorch").getGpuCount();
      if (id >= visible) {
        throw new IllegalArgumentException("model.device " + spec + ": PyTorch sees " + visible + " GPU(s)");
      }
      return Device.gpu(id);
    }
    throw new IllegalArgumentException("model.device must be cpu, gpu or gpu:N (got " + spec + ")");
  }

  // ---------------------------------------------------------------------------------------------------------
  // Accessors

  public ModelConfig config() {
    return config;
  }

  public Device device() {
    return device;
  }

  /** The parameters' dtype: FLOAT32, BFLOAT16 or FLOAT16. (DJL reports a bf16 array's dtype as UNKNOWN.) */
  public DataType dtype() {
    return dtype;
  }

  /** Every parameter by its Hugging Face name, in state-dict order (fixed for a given config). */
  public LinkedHashMap<String, Parameter> parameters() {
    return new LinkedHashMap<>(parameters);
  }

  public long numParameters() {
    long n = 0;
    for (Parameter p : parameters.values()) {
      n += p.getArray().getShape().size();
    }
    return n;
  }

  /**
   * What the weights were loaded from: for a folder, sha256 over config.json and the safetensors bytes; for a
   * random or built-in model, over the config, the seed and the initialisation scheme. Training does not
   * change it; a folder saved after training has its own.
   */
  public String fingerprint() {
    return fingerprint;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Mixed precision

  /**
   * Mixed precision with torch.autocast's split, switched by the trainer ({@code mixed_precision}): with float32
   * parameters and {@code compute} BFLOAT16 or FLOAT16 every matmul (the projections, attention, the LM head) runs
   * in {@code compute}; the float32 weights are cast for each pass inside the autograd graph, so their gradients
   * arrive in float32. The embedding lookup, the residual stream, RMSNorm, rotary embeddings (float32 cos/sin, as
   * transformers under autocast), logits, softmax and log-probs stay float32. Evaluation and other no-grad passes
   * of this model run the same way. FLOAT32 or null switches it off; a model held in bfloat16 or float16 computes in
   * its own dtype only.
   */
  public void computeDtype(DataType compute) {
    if (compute == null || compute == dtype) {
      computeDtype = null;
      return;
    }
    if (dtype != DataType.FLOAT32 || (compute != DataType.BFLOAT16 && compute != DataType.FLOAT16)) {
      throw new IllegalArgumentException("mixed precision needs float32 parameters and a bfloat16 or float16 compute "
          + "dtype (parameters " + dtype + ", compute " + compute + ")");
    }
    computeDtype = compute;
  }

  /** The dtype matmuls run in: {@link #dtype()} unless {@link #computeDtype(DataType)} chose a lower one. */
  public DataType computeDtype() {
    DataType compute = computeDtype;
    return compute == null ? dtype : compute;
  }

  /** {@code a} in the compute dtype for this pass, attached to {@code scope}; the cast is recorded for autograd. */
  private NDArray lowered(NDArray a, NDManager scope) {
    DataType compute = computeDtype();
    if (Casts.of(a) == compute) {
      return a;
    }
    NDArray cast = Casts.to(a, compute);
    cast.attach(scope); // a parameter's cast lands in the model's manager first; it lives for this pass only
    return cast;
  }

  /** Chooses libtorch's fused kernels (the default where reachable) or explicit ops; both give the same maths. */
  void useFusedOps(boolean fused) {
    this.fused = fused;
  }

  /** Whether this model takes libtorch's fused kernels where reachable ({@link #useFusedOps}). */
  boolean fusedOps() {
    return fused;
  }

  /** The model's own manager, which holds the parameters. Callers must not attach anything to it. */
  NDManager manager() {
    return manager;
  }

  @Override
  public void close() {
    manager.close();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Adapters (LoRA, as PEFT)

  /** Which adapter set forward passes on a thread use: see {@link #adapters(AdapterMode)}. */
  public enum AdapterMode {
    /** The trained adapter (the default). */
    TRAINED,
    /** The frozen reference adapter of {@link #loadReferenceAdapter}; the base alone when there is none. */
    REFERENCE,
    /** The base model alone (PEFT's {@code disable_adapter()}). */
    NONE
  }

  /** Restores the previous {@link AdapterMode} on close. */
  public interface AdapterScope extends AutoCloseable {
    @Override
    void close();
  }

  /**
   * Forward passes on this thread use {@code mode}'s adapters until the returned scope closes (then the previous
   * mode again). One model serves the policy (TRAINED), the base (NONE) and an adapter reference (REFERENCE)
   * without a second copy of the weights.
   */
  public AdapterScope adapters(AdapterMode mode) {
    AdapterMode previous = adapterMode.get();
    adapterMode.set(mode);
    return () -> adapterMode.set(previous);
  }

  /** The adapter set this thread's forward passes use, or null for the base alone. */
  private Lora activeAdapter() {
    if (trained == null && reference == null) {
      return null;
    }
    return switch (adapterMode.get()) {
      case TRAINED -> trained;
      case REFERENCE -> reference;
      case NONE -> null;
    };
  }

  /**
   * Freezes the base and adds fresh trainable LoRA adapters (replacing any): for every linear layer named in
   * {@code peft.target_modules}, lora_A [r, in] drawn as PEFT's {@code kaiming_uniform_(a=sqrt(5))}, i.e.
   * U(-1/sqrt(in), 1/sqrt(in)), from {@code seed} and the module's name, and lora_B [out, r] zeros, so the
   * model's outputs are unchanged until training moves B. Modules to save get trainable float32 copies, and so does
   * a reward model's score head (PEFT's SEQ_CLS task trains it whole).
   */
  public void addLora(PeftSettings peft, long seed) {
    peft.checked("peft");
    checkNoTiedCopy(peft, "peft.modules_to_save");
    Lora fresh = new Lora(peft, true, (module, a) -> {
      SplittableRandom random = new SplittableRandom(seed ^ (long) (module + ".lora_A").hashCode()
          * 0x9E3779B97F4A7C15L);
      long in = a.get(1);
      double bound = 1.0 / Math.sqrt(in);
      float[] values = new float[Math.toIntExact(a.size())];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) ((random.nextDouble() * 2 - 1) * bound);
      }
      return values;
    }, sha256Hex("lora init\nbase=" + fingerprint + "\n" + peft + "\nseed=" + seed + "\n" + LORA_INIT_SCHEME));
    freezeBase();
    replaceTrained(fresh);
  }

  private static final String LORA_INIT_SCHEME = "lora init v1: lora_A uniform(-1/sqrt(in), 1/sqrt(in)) from "
      + "SplittableRandom(seed ^ (module + \".lora_A\").hashCode() * golden), lora_B zeros, float32 copies to save";

  /**
   * Loads a PEFT LoRA adapter folder (adapter_config.json and adapter_model.safetensors, as PEFT's
   * {@code save_pretrained} writes them) as this model's trainable adapter, replacing any (new {@link Parameter}
   * objects: build the optimizer after). The config and every tensor's name and shape are checked before a value
   * is read; what this model cannot represent (DoRA, rsLoRA, rank or alpha patterns, biases, regex targets, other
   * PEFT types) fails naming the file and field.
   */
  public void loadAdapter(String folder, Storage storage) {
    Lora loaded = readAdapter(folder, storage, true);
    freezeBase();
    replaceTrained(loaded);
  }

  /**
   * Loads a PEFT LoRA adapter folder, checked as {@link #loadAdapter}, as the frozen reference adapter that
   * {@link AdapterMode#REFERENCE} passes use (DPO on top of an SFT adapter: the reference is base + SFT adapter).
   * It leaves the base as it is: a fixed reference needs a frozen base, i.e. a trained adapter as well.
   */
  public void loadReferenceAdapter(String folder, Storage storage) {
    Lora loaded = readAdapter(folder, storage, false);
    if (reference != null) {
      reference.close();
    }
    reference = loaded;
  }

  /** Whether a trained adapter is attached ({@link #addLora} or {@link #loadAdapter}). */
  public boolean hasAdapters() {
    return trained != null;
  }

  /** The trained adapter's settings, null without one. */
  public PeftSettings peft() {
    return trained == null ? null : trained.peft;
  }

  /**
   * What the trained adapter started from: for a loaded folder, sha256 over its adapter_config.json and
   * safetensors bytes; for {@link #addLora}, over the base fingerprint, the settings, the seed and the init
   * scheme. Training does not change it. Null without adapters.
   */
  public String adapterFingerprint() {
    return trained == null ? null : trained.fingerprint;
  }

  /** As {@link #adapterFingerprint()} for the reference adapter; null without one. */
  public String referenceAdapterFingerprint() {
    return reference == null ? null : reference.fingerprint;
  }

  /**
   * The parameters training updates, by name: with adapters, the trained adapter's lora_A/lora_B (and copies of
   * modules to save) under their PEFT keys in PEFT's state-dict order; without, {@link #parameters()}.
   */
  public LinkedHashMap<String, Parameter> trainableParameters() {
    return trained == null ? parameters() : new LinkedHashMap<>(trained.byKey);
  }

  /**
   * Writes the trained adapter as PEFT does: adapter_config.json (LoraConfig's fields, {@code inference_mode}
   * true) and adapter_model.safetensors (float32, PEFT key names); other files in the folder are left alone.
   */
  public void saveAdapter(String folder, Storage storage) {
    if (trained == null) {
      throw new IllegalStateException("saveAdapter: the model has no adapter (call addLora or loadAdapter first)");
    }
    List<Safetensors.Tensor> tensors = new ArrayList<>();
    trained.byKey.forEach((key, p) -> tensors.add(new Safetensors.Tensor(key, p.getArray().getShape().getShape(),
        Safetensors.Dtype.F32, slices -> hostSlices(p.getArray(), Float.BYTES, slices))));
    AdapterFolder.write(storage, folder, trained.peft, origin, taskType(), tensors);
  }

  /**
   * Writes the model with the trained adapter folded in, as PEFT's {@code merge_and_unload()} then
   * {@code save_pretrained}: every target weight becomes W + scaling * B @ A (computed in float32, one tensor at a
   * time, then written in {@code dtype}); modules saved whole replace theirs. A plain Hugging Face folder.
   */
  public void saveMerged(String folder, Storage storage, DataType dtype, long maxShardBytes) {
    if (trained == null) {
      throw new IllegalStateException("saveMerged: the model has no adapter (call addLora or loadAdapter first)");
    }
    Safetensors.Dtype fileDtype = fileDtype(dtype);
    Lora lora = trained;
    List<Safetensors.Tensor> tensors = new ArrayList<>();
    parameters.forEach((name, p) -> {
      long[] shape = p.getArray().getShape().getShape();
      Parameter whole = name.equals("model.embed_tokens.weight") ? lora.embedCopy
          : name.equals("lm_head.weight") ? lora.headCopy : name.equals(SCORE_WEIGHT) ? lora.scoreCopy : null;
      Parameter[] ab = lora.pairs.get(name);
      if (whole != null) {
        tensors.add(new Safetensors.Tensor(name, shape, Safetensors.Dtype.F32,
            slices -> hostSlices(whole.getArray(), Float.BYTES, slices)));
      } else if (ab != null) {
        tensors.add(new Safetensors.Tensor(name, shape, Safetensors.Dtype.F32, slices -> {
          try (NDManager scratch = manager.newSubManager(); NoGrad ignored = NoGrad.enter()) {
            NDArray w = float32Copy(p.getArray());
            w.attach(scratch);
            NDArray delta = ab[1].getArray().matMul(ab[0].getArray());
            delta.attach(scratch);
            hostSlices(w.addi(delta.muli(lora.scaling)), Float.BYTES, slices);
          }
        }));
      } else {
        Safetensors.Dtype held = fileDtype(this.dtype);
        tensors.add(new Safetensors.Tensor(name, shape, held, slices -> hostSlices(p.getArray(), held.bytes, slices)));
      }
    });
    ModelFolder.write(storage, folder, config, tensors, fileDtype, maxShardBytes, companions);
  }

  /** A reward model's score head's tensor name (transformers' *ForSequenceClassification). */
  static final String SCORE_WEIGHT = "score.weight";

  /** PEFT's task type of this model's adapters: SEQ_CLS for a reward model, CAUSAL_LM otherwise. */
  private String taskType() {
    return score != null ? AdapterFolder.SEQ_CLS : AdapterFolder.CAUSAL_LM;
  }

  /** The files of a PEFT adapter folder (see {@link AdapterFolder}). */
  public static final String ADAPTER_CONFIG = AdapterFolder.CONFIG;
  public static final String ADAPTER_WEIGHTS = AdapterFolder.WEIGHTS;

  /** Slices of an array's memory, through a host copy when it lives on another device. */
  private void hostSlices(NDArray array, int elementBytes, Consumer<ByteBuffer> slices) {
    if (Device.cpu().equals(device)) {
      forEachSlice(array, elementBytes, slices);
      return;
    }
    try (NDArray host = array.toDevice(Device.cpu(), true)) {
      forEachSlice(host, elementBytes, slices);
    }
  }

  /**
   * A float32 copy of a parameter, in its own memory, outside the graph. Not {@code toType(FLOAT32, true)}: for
   * an array already float32 that hands back the same tensor, and writing the "copy" would write the base.
   */
  private NDArray float32Copy(NDArray weight) {
    try (NoGrad ignored = NoGrad.enter()) {
      return dtype == DataType.FLOAT32 ? weight.duplicate() : Casts.to(weight, DataType.FLOAT32);
    }
  }

  /** Base weights stop taking gradients (bf16/f16 bases never had them). */
  private void freezeBase() {
    if (dtype == DataType.FLOAT32) {
      for (Parameter p : parameters.values()) {
        p.getArray().setRequiresGradient(false);
      }
    }
    baseFrozen = true;
  }

  private void replaceTrained(Lora fresh) {
    if (trained != null) {
      trained.close();
    }
    trained = fresh;
  }

  /**
   * Modules this model can save whole. A tied model has one matrix for embed_tokens and lm_head; PEFT saves a module
   * whole by wrapping a copy, so the copy would untie them, which a merged folder of this config.json cannot express.
   * A reward model has no LM head (and so nothing tied to its embedding); its score head is saved whole anyway.
   */
  private void checkNoTiedCopy(PeftSettings peft, String where) {
    if (score != null && peft.modulesToSave().contains("lm_head")) {
      throw new IllegalArgumentException(where + ": lm_head cannot be saved whole on a reward model ("
          + config.architecture() + " has a score head, no LM head; the score head is always trained whole)");
    }
    // A reward model has no LM head to tie to: its embedding may be saved whole.
    if (config.tieWordEmbeddings() && score == null && !peft.modulesToSave().isEmpty()) {
      throw new IllegalArgumentException(where + ": " + peft.modulesToSave() + " cannot be saved whole on a model "
          + "with tie_word_embeddings (the copy would untie embedding and head)");
    }
  }

  /** Reads and checks a PEFT adapter folder into a new adapter set. */
  private Lora readAdapter(String folder, Storage storage, boolean trainable) {
    AdapterFolder.Opened opened = AdapterFolder.open(storage, folder);
    PeftSettings peft = opened.peft();
    String weightsPath = opened.weightsPath();
    if (!opened.taskType().equals(taskType())) {
      throw new IllegalArgumentException(opened.configPath() + ": task_type " + opened.taskType() + " is not this "
          + "model's: " + config.architecture() + " takes " + taskType() + " adapters"
          + (score != null ? " (a reward model's adapter trains the score head whole)" : ""));
    }
    checkNoTiedCopy(peft, opened.configPath() + ": modules_to_save");
    Lora lora = new Lora(peft, trainable, (module, shape) -> null, null);
    try {
      for (Map.Entry<String, Parameter> e : lora.byKey.entrySet()) {
        Safetensors.Entry t = opened.tensors().get(e.getKey());
        Shape shape = e.getValue().getArray().getShape();
        if (t == null) {
          throw new IllegalArgumentException(weightsPath + ": tensor " + e.getKey() + " is missing (expected shape "
              + shape + " for r=" + peft.r() + ", target_modules " + peft.targetModules() + ", modules_to_save "
              + peft.modulesToSave() + ")");
        }
        if (!Arrays.equals(t.shape(), shape.getShape())) {
          throw new IllegalArgumentException(weightsPath + ": tensor " + e.getKey() + " has shape "
              + Arrays.toString(t.shape()) + " but " + AdapterFolder.CONFIG + " (r=" + peft.r()
              + ") and the model's config.json imply " + shape);
        }
      }
      for (String name : opened.tensors().keySet()) {
        if (!lora.byKey.containsKey(name)) {
          throw new IllegalArgumentException(weightsPath + ": unexpected tensor " + name + " (not an adapter of "
              + AdapterFolder.CONFIG + "'s target_modules " + peft.targetModules() + " and modules_to_save "
              + peft.modulesToSave() + " on this model)");
        }
      }
      byte[] weightsSha = Safetensors.stream(storage, weightsPath, (entry, data) ->
          fill(lora.byKey.get(entry.name()).getArray(), data, DataType.FLOAT32));
      lora.fingerprint = opened.fingerprint(weightsSha);
      return lora;
    } catch (RuntimeException e) {
      lora.close();
      throw e;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Forward

  /**
   * Next-token logits [B, T, V] in float32 for token ids [B, T] (int32 or int64) at positions 0..T-1 with a
   * causal mask (right padding needs no other mask). With {@code training} the pass is recorded for autograd
   * (inside a GradientCollector); without it, gradient recording is off on this thread for the call.
   * The result is attached to {@code inputIds}' manager.
   */
  public NDArray logits(NDArray inputIds, boolean training) {
    requireLmHead();
    if (training && checkpointing.get() != null) {
      try (NDArray hidden = hiddenStates(inputIds, true)) {
        return lmHead(hidden);
      }
    }
    if (training) {
      return forward(inputIds, null, null, null, false);
    }
    try (NoGrad ignored = NoGrad.enter()) {
      return forward(inputIds, null, null, null, false);
    }
  }

  /**
   * The final normed hidden states [B, T, hidden_size] in the model's dtype, the LM head's input: what
   * {@link #logits} computes before {@link #head}. Callers that need logits at a few positions only (response
   * tokens) select those rows and apply the head to them, instead of a [B, T, V] array. Recording as for
   * {@link #logits}; attached to {@code inputIds}' manager.
   */
  public NDArray hiddenStates(NDArray inputIds, boolean training) {
    if (training) {
      ActivationCheckpoints checkpoints = checkpointing.get();
      return checkpoints == null ? hiddenStates(inputIds, null, null, null, false)
          : checkpointedHiddenStates(inputIds, checkpoints);
    }
    try (NoGrad ignored = NoGrad.enter()) {
      return hiddenStates(inputIds, null, null, null, false);
    }
  }

  /**
   * The LM head (tied to the embedding or not) on hidden states [..., hidden_size] of {@link #hiddenStates}:
   * logits [..., V] in float32, computed in the model's dtype as in {@link #logits}. Recording as for
   * {@link #logits}; attached to {@code hidden}'s manager.
   */
  public NDArray head(NDArray hidden, boolean training) {
    requireLmHead();
    if (training) {
      return lmHead(hidden);
    }
    try (NoGrad ignored = NoGrad.enter()) {
      return lmHead(hidden);
    }
  }

  /**
   * A reward model's scores [B] in float32 for token ids [B, T] (each row right- or left-padded with
   * {@code pad_token_id}): the {@code score} head on the final hidden state of each row's rightmost token that is not
   * {@code pad_token_id}, as transformers' {@code *ForSequenceClassification} pools (a row of padding only is scored
   * at position 0, as its argmax does). Computed in the compute dtype like the LM head, returned as float32.
   * Recording as for {@link #logits}; attached to {@code inputIds}' manager.
   */
  public NDArray scores(NDArray inputIds, boolean training) {
    if (score == null) {
      throw new IllegalStateException(config.architecture() + " has no score head: load a reward model "
          + "(*ForSequenceClassification, CausalLM.loadScorer)");
    }
    long[] ids;
    if (inputIds.getDataType() == DataType.INT64) {
      ids = inputIds.toLongArray();
    } else {
      try (NDArray wide = inputIds.toType(DataType.INT64, true)) {
        ids = wide.toLongArray();
      }
    }
    long time = inputIds.getShape().get(1);
    long[] last = new long[Math.toIntExact(inputIds.getShape().get(0))];
    for (int b = 0; b < last.length; b++) {
      last[b] = b * time; // padding only: transformers' argmax of an all-zero row is position 0
      for (long t = time - 1; t >= 0; t--) {
        if (ids[Math.toIntExact(b * time + t)] != config.padTokenId()) {
          last[b] = b * time + t;
          break;
        }
      }
    }
    NDManager caller = inputIds.getManager();
    NDArray hidden = hiddenStates(inputIds, training);
    try (NoGrad ignored = training ? null : NoGrad.enter(); NDManager scope = caller.newSubManager(device)) {
      hidden.attach(scope);
      // The gather index is kept by backward, past this scope's Java buffer: owned.
      NDArray index = owned(scope.create(last));
      NDArray pooled = hidden.reshape(-1, hidden.getShape().get(2)).get(scope, new NDIndex("{}", index));
      Lora lora = activeAdapter();
      NDArray head = lora != null && lora.scoreCopy != null ? lora.score(pooled) : linear(pooled, score, null);
      NDArray out = (Casts.of(head) == DataType.FLOAT32 ? head : Casts.to(head, DataType.FLOAT32)).reshape(-1);
      out.attach(caller);
      return out;
    }
  }

  private void requireLmHead() {
    if (score != null) {
      throw new IllegalStateException(config.architecture() + " is a reward model: it has a score head, no LM head "
          + "(use scores)");
    }
  }

  /**
   * The general forward pass, for generation: {@code rowStart[b]} is the position of row b's first new token
   * (null: the cache length for every row); {@code keyMask[b][j]} false hides key j from row b (null: all
   * visible); {@code cache} holds earlier keys and values and receives the new ones (null: none);
   * {@code lastOnly} computes logits for the last position only ([B, 1, V]).
   */
  NDArray forward(NDArray inputIds, long[] rowStart, boolean[][] keyMask, KvCache cache, boolean lastOnly) {
    try (NDArray hidden = hiddenStates(inputIds, rowStart, keyMask, cache, lastOnly)) {
      return lmHead(hidden);
    }
  }

  /** The shape of token ids, which must be [batch, time] and fit max_position_embeddings after {@code past}. */
  private Shape checkedIds(NDArray inputIds, int past) {
    Shape shape = inputIds.getShape();
    if (shape.dimension() != 2) {
      throw new IllegalArgumentException("input ids must be [batch, time], got " + shape);
    }
    if (past + shape.get(1) > config.maxPositionEmbeddings()) {
      throw new IllegalArgumentException("sequence of " + (past + shape.get(1)) + " tokens exceeds "
          + "max_position_embeddings=" + config.maxPositionEmbeddings());
    }
    return shape;
  }

  /** The decoder stack and final norm: hidden states [B, T or 1, d] attached to {@code inputIds}' manager. */
  private NDArray hiddenStates(NDArray inputIds, long[] rowStart, boolean[][] keyMask, KvCache cache,
      boolean lastOnly) {
    NDManager caller = inputIds.getManager();
    int past = cache == null ? 0 : cache.length();
    Shape shape = checkedIds(inputIds, past);
    int batch = Math.toIntExact(shape.get(0));
    int time = Math.toIntExact(shape.get(1));
    try (NDManager scope = caller.newSubManager(device)) {
      // Borrow the input into the scope so every array derived from it is freed with the scope.
      inputIds.tempAttach(scope);
      NDArray ids = inputIds.toDevice(device, false);
      if (ids.getDataType() != DataType.INT64) {
        ids = ids.toType(DataType.INT64, false);
      }
      Rope rope = new Rope(scope, batch, time, rowStart, past);
      NDArray bias = attentionBias(scope, batch, time, past, keyMask);
      NDArray x = embed(ids);
      for (int i = 0; i < layers.size(); i++) {
        x = layers.get(i).forward(x, rope, bias, cache, i);
      }
      if (lastOnly && time > 1) {
        x = x.get(":, -1:, :");
      }
      x = rmsNorm(x, finalNorm);
      if (cache != null) {
        cache.advance(time);
      }
      x.attach(caller);
      return x;
    }
  }

  /**
   * Activation checkpointing for this model's training passes on the current thread until the result is closed
   * (transformers' {@code gradient_checkpointing}): {@link #hiddenStates(NDArray, boolean)} and
   * {@link #logits(NDArray, boolean)} with {@code training} keep only each decoder layer's input and record the final
   * norm onwards; after back-propagating the loss the caller calls {@link ActivationCheckpoints#backward()}, which
   * recomputes the layers one by one and adds their gradients. Passes without {@code training} are unaffected. The
   * kept arrays live in a sub-manager of {@code manager}.
   *
   * <pre>{@code
   * try (ActivationCheckpoints checkpoints = model.gradientCheckpointing(scope)) {
   *   NDArray loss = ...;                 // from model.hiddenStates(ids, true) or model.logits(ids, true)
   *   collector.backward(loss);
   *   checkpoints.backward();
   * }
   * }</pre>
   *
   * @throws IllegalStateException when this thread already holds checkpoints of this model open
   */
  public ActivationCheckpoints gradientCheckpointing(NDManager manager) {
    if (checkpointing.get() != null) {
      throw new IllegalStateException("gradient checkpointing is already on for this model on this thread");
    }
    ActivationCheckpoints checkpoints = new ActivationCheckpoints(manager.newSubManager(device), checkpointing::remove);
    checkpointing.set(checkpoints);
    return checkpoints;
  }

  /**
   * {@link #hiddenStates(NDArray, boolean)} in training under activation checkpointing: the decoder stack without
   * graph through {@code checkpoints}, the final norm recorded from the leaf it returns. The ids, rotary table and
   * mask stay with the checkpoints for the recomputation.
   */
  private NDArray checkpointedHiddenStates(NDArray inputIds, ActivationCheckpoints checkpoints) {
    NDManager caller = inputIds.getManager();
    Shape shape = checkedIds(inputIds, 0);
    int batch = Math.toIntExact(shape.get(0));
    int time = Math.toIntExact(shape.get(1));
    NDManager keep = checkpoints.newPassManager();
    NDArray ids;
    try (NDManager staging = caller.newSubManager(device)) {
      inputIds.tempAttach(staging);
      NDArray x = inputIds.toDevice(device, false);
      if (x.getDataType() != DataType.INT64) {
        x = x.toType(DataType.INT64, false);
      }
      ids = x.duplicate(); // libtorch-owned: the recomputed embedding reads the ids again in backward
      ids.attach(keep);
    }
    Rope rope = new Rope(keep, batch, time, null, 0);
    NDArray bias = attentionBias(keep, batch, time, 0, null);
    NDArray top = checkpoints.forward(keep, ids, new ActivationCheckpoints.Segments() {
      @Override
      public int layers() {
        return layers.size();
      }

      @Override
      public NDArray embed(NDArray tokens) {
        return CausalLM.this.embed(tokens);
      }

      @Override
      public boolean embeddingTrains() {
        Lora lora = activeAdapter();
        Parameter table = lora != null && lora.embedCopy != null ? lora.embedCopy : embedTokens;
        return table.getArray().hasGradient();
      }

      @Override
      public NDArray layer(int index, NDArray x) {
        return layers.get(index).forward(x, rope, bias, null, index);
      }
    });
    try (NDManager scope = caller.newSubManager(device)) {
      top.tempAttach(scope);
      NDArray x = rmsNorm(top, finalNorm);
      x.attach(caller);
      return x;
    }
  }

  /** hidden W^T with the LM head (the embedding when tied), handed out in float32, attached to hidden's manager. */
  private NDArray lmHead(NDArray hidden) {
    Lora lora = activeAdapter();
    NDArray logits = lora != null && lora.headCopy != null ? lora.head(hidden)
        : linear(hidden, lmHead == null ? embedTokens : lmHead, null);
    if (Casts.of(logits) == DataType.FLOAT32) {
      return logits;
    }
    try (logits) {
      return Casts.to(logits, DataType.FLOAT32); // transformers' logits.float(): losses run in float32; recorded
    }
  }

  /** A fresh key/value cache for incremental decoding; close it (or its parent manager) when done. */
  KvCache newCache(NDManager parent) {
    return new KvCache(parent.newSubManager(device), layers.size());
  }

  /**
   * Additive attention bias [B or 1, 1, T, past + T]: query t (at cache index past + t) sees key j when
   * j <= past + t, within the sliding window if there is one, and when the key is not padding. Null when the
   * plain causal mask says it all (no cache, no padding, no window in reach), which the fused kernel exploits.
   */
  private NDArray attentionBias(NDManager scope, int batch, int time, int past, boolean[][] keyMask) {
    int keys = past + time;
    int window = config.slidingWindow();
    if (past == 0 && keyMask == null && (window == 0 || keys <= window)) {
      return null;
    }
    int rows = keyMask == null ? 1 : batch;
    float[] bias = new float[rows * time * keys];
    for (int b = 0; b < rows; b++) {
      for (int t = 0; t < time; t++) {
        int query = past + t;
        for (int j = 0; j < keys; j++) {
          boolean visible = j <= query && (window == 0 || query - j < window)
              && (keyMask == null || keyMask[b][j]);
          bias[(b * time + t) * keys + j] = visible ? 0f : MASKED;
        }
      }
    }
    NDArray mask = owned(scope.create(bias, new Shape(rows, 1, time, keys)));
    DataType compute = computeDtype();
    if (compute == DataType.FLOAT32) {
      return mask;
    }
    try (mask) {
      return Casts.to(compute == DataType.FLOAT16 ? mask.maximum(-65504f) : mask, compute); // float16 has no -1e30
    }
  }

  /**
   * A libtorch-owned copy of an array made from Java data, the original closed. On the CPU, DJL's
   * {@code NDManager.create(...)} makes a tensor that aliases a Java direct buffer, which is freed (and its memory
   * reused) once the array is closed and collected; autograd keeps what backward needs (gather indices, a
   * multiplier, a mask) beyond the forward pass, so such inputs of recorded ops must own their memory.
   */
  static NDArray owned(NDArray fromJavaData) {
    try (NDArray staged = fromJavaData) {
      return staged.duplicate();
    }
  }

  private NDArray linear(NDArray x, Parameter weight, Parameter bias) {
    return linearArrays(x, weight.getArray(), bias == null ? null : bias.getArray());
  }

  /** A linear layer as {@link #linear}, plus this thread's adapter when the layer is one of its targets. */
  private NDArray project(NDArray x, Parameter weight, Parameter bias) {
    NDArray y = linear(x, weight, bias);
    Lora lora = activeAdapter();
    return lora == null ? y : lora.add(x, y, weight.getName(), null);
  }

  /** The token embedding, from the adapter's trainable copy when it saves embed_tokens whole. */
  private NDArray embed(NDArray ids) {
    Lora lora = activeAdapter();
    Parameter table = lora != null && lora.embedCopy != null ? lora.embedCopy : embedTokens;
    NDArray x = ids.getNDArrayInternal().embedding(ids, table.getArray(), SparseFormat.DENSE).singletonOrThrow();
    if (table == embedTokens || dtype == DataType.FLOAT32) {
      return x;
    }
    try (x) {
      return Casts.to(x, dtype); // the float32 copy's rows enter the stack in the model's dtype
    }
  }

  /**
   * x W^T + b in one fused libtorch call, in the compute dtype (mixed precision casts all three for the pass); the
   * result is attached to x's manager.
   */
  private NDArray linearArrays(NDArray x, NDArray weight, NDArray bias) {
    if (computeDtype != null) {
      NDManager scope = x.getManager();
      x = lowered(x, scope);
      weight = lowered(weight, scope);
      bias = bias == null ? null : lowered(bias, scope);
    }
    return x.getNDArrayInternal().linear(x, weight, bias).singletonOrThrow();
  }

  private Parameter param(String name, Shape shape, Kind kind) {
    Parameter p = Parameter.builder().setName(name).setType(switch (kind) {
      case MATRIX -> Parameter.Type.WEIGHT;
      case BIAS -> Parameter.Type.BIAS;
      case NORM -> Parameter.Type.GAMMA;
    }).build();
    NDArray array = weights.create(manager, name, shape, kind);
    array.attach(manager);
    p.setArray(array);
    parameters.put(name, p);
    return p;
  }

  /**
   * Rotary position embeddings as one complex multiply per tensor. HF rotates each head's dimension pairs
   * (i, i + hd/2) ("rotate_half"); the query and key projections' output rows are gathered per pass into the
   * interleaved order (2i, 2i + 1), so each pair is one complex number and the rotation is
   * {@code x * e^(i * pos * theta_i)}. Attention only takes dot products of queries with keys, which a common
   * permutation of head dimensions leaves unchanged, so nothing is permuted back. The inverse frequencies are
   * transformers' float32 values (with rope_scaling applied, see {@link RopeScaling#inverseFrequencies}); angles are
   * formed from them in double and cos/sin rounded once, so a long position's angle carries no float32 rounding of
   * its own.
   */
  private final class Rope {
    final NDArray rotation; // (cos, sin) pairs [B or 1, T, 1, hd/2, 2]
    final NDArray queryRows;
    final NDArray keyRows;

    Rope(NDManager scope, int batch, int time, long[] rowStart, int past) {
      int hd = config.headDim();
      int half = hd / 2;
      int rows = rowStart == null ? 1 : batch;
      float[] polar = new float[rows * time * hd];
      for (int b = 0; b < rows; b++) {
        for (int t = 0; t < time; t++) {
          long pos = Math.max(0, rowStart == null ? past + t : rowStart[b] + t);
          int base = (b * time + t) * hd;
          for (int i = 0; i < half; i++) {
            double angle = pos * (double) ropeInverseFrequencies[i];
            polar[base + 2 * i] = (float) Math.cos(angle);
            polar[base + 2 * i + 1] = (float) Math.sin(angle);
          }
        }
      }
      rotation = owned(scope.create(polar, new Shape(rows, time, 1, half, 2)));
      queryRows = interleavedRows(scope, config.numAttentionHeads());
      keyRows = interleavedRows(scope, config.numKeyValueHeads());
    }

    /** Row order that turns each head's halves layout into interleaved pairs. */
    private NDArray interleavedRows(NDManager scope, int heads) {
      int hd = config.headDim();
      long[] order = new long[heads * hd];
      for (int h = 0; h < heads; h++) {
        for (int i = 0; i < hd / 2; i++) {
          order[h * hd + 2 * i] = h * hd + i;
          order[h * hd + 2 * i + 1] = h * hd + hd / 2 + i;
        }
      }
      return owned(scope.create(order));
    }

    /** The rows of a projection weight or bias in {@code order}, as a pass-local array (gradients flow back). */
    NDArray gather(NDManager scope, Parameter p, NDArray order) {
      return p == null ? null : p.getArray().get(scope, new NDIndex("{}", order));
    }

    /**
     * A query or key projection with its output rows in {@code order}: the base weight's rows gathered, and an
     * adapter's B rows gathered the same way, since B's rows are the adapter's output rows.
     */
    NDArray project(NDManager scope, NDArray x, Parameter weight, Parameter bias, NDArray order) {
      NDArray y = linearArrays(x, gather(scope, weight, order), gather(scope, bias, order));
      Lora lora = activeAdapter();
      return lora == null ? y : lora.add(x, y, weight.getName(), order);
    }

    /** x [B, T, heads, hd] in interleaved order, rotated. */
    NDArray apply(NDArray x) {
      return FusedOps.rope(x, rotation, fused, computeDtype != null);
    }
  }

  /**
   * RMSNorm as HF computes it, x / sqrt(mean(x^2) + eps) * weight, the mean square from one 2-norm reduction;
   * in a lower precision the normalisation runs in float32 and is cast back before the weight multiplies it
   * ({@code weight * x.to(input_dtype)}).
   */
  private NDArray rmsNorm(NDArray x, Parameter weight) {
    if (dtype == DataType.FLOAT32) {
      NDArray normed = normalise(x).mul(weight.getArray());
      // Mixed precision: normed in float32, cast once here for the matmuls that read it (autocast casts per matmul).
      return computeDtype == null ? normed : lowered(normed, x.getManager());
    }
    NDArray normalised = normalise(Casts.to(x, DataType.FLOAT32));
    return Casts.to(normalised, dtype).mul(weight.getArray());
  }

  private NDArray normalise(NDArray x) {
    NDArray meanSquare = ScalarOps.div(x.norm(2, new int[] {-1}, true).square(), config.hiddenSize());
    return x.mul(ScalarOps.pow(meanSquare.add(config.rmsNormEps()), -0.5));
  }

  /** Grouped-query self-attention: query head h reads key/value head h / (heads / kv_heads). */
  private final class Attention {
    final Parameter q;
    final Parameter k;
    final Parameter v;
    final Parameter o;
    final Parameter qBias;
    final Parameter kBias;
    final Parameter vBias;
    final Parameter oBias;

    Attention(String prefix) {
      int d = config.hiddenSize();
      int qDim = config.numAttentionHeads() * config.headDim();
      int kvDim = config.numKeyValueHeads() * config.headDim();
      q = param(prefix + "q_proj.weight", new Shape(qDim, d), Kind.MATRIX);
      qBias = config.qkvBias() ? param(prefix + "q_proj.bias", new Shape(qDim), Kind.BIAS) : null;
      k = param(prefix + "k_proj.weight", new Shape(kvDim, d), Kind.MATRIX);
      kBias = config.qkvBias() ? param(prefix + "k_proj.bias", new Shape(kvDim), Kind.BIAS) : null;
      v = param(prefix + "v_proj.weight", new Shape(kvDim, d), Kind.MATRIX);
      vBias = config.qkvBias() ? param(prefix + "v_proj.bias", new Shape(kvDim), Kind.BIAS) : null;
      o = param(prefix + "o_proj.weight", new Shape(d, qDim), Kind.MATRIX);
      oBias = config.outputBias() ? param(prefix + "o_proj.bias", new Shape(d), Kind.BIAS) : null;
    }

    NDArray forward(NDArray x, Rope rope, NDArray bias, KvCache cache, int layer) {
      NDManager scope = x.getManager();
      long b = x.getShape().get(0);
      long t = x.getShape().get(1);
      long heads = config.numAttentionHeads();
      long kvHeads = config.numKeyValueHeads();
      long hd = config.headDim();
      // [B, T, heads, hd] (interleaved, see Rope) -> rotary embedding -> [B, heads, T, hd], a view
      NDArray query = rope.apply(rope.project(scope, x, q, qBias, rope.queryRows).reshape(b, t, heads, hd))
          .transpose(0, 2, 1, 3);
      NDArray key = rope.apply(rope.project(scope, x, k, kBias, rope.keyRows).reshape(b, t, kvHeads, hd))
          .transpose(0, 2, 1, 3);
      NDArray value = project(x, v, vBias).reshape(b, t, kvHeads, hd).transpose(0, 2, 1, 3);
      if (cache != null) {
        key = cache.append(layer, 0, key, scope);
        value = cache.append(layer, 1, value, scope);
      }
      if (heads != kvHeads) {
        // HF's repeat_kv: query head h reads key/value head h / (heads / kv_heads).
        key = key.repeat(1, heads / kvHeads);
        value = value.repeat(1, heads / kvHeads);
      }
      NDArray y = FusedOps.attention(query, key, value, bias, fused);
      return project(y.transpose(0, 2, 1, 3).reshape(b, t, heads * hd), o, oBias);
    }
  }

  /** SwiGLU: down(silu(gate(x)) * up(x)). */
  private final class Mlp {
    final Parameter gate;
    final Parameter up;
    final Parameter down;
    final Parameter gateBias;
    final Parameter upBias;
    final Parameter downBias;

    Mlp(String prefix) {
      int d = config.hiddenSize();
      int i = config.intermediateSize();
      gate = param(prefix + "gate_proj.weight", new Shape(i, d), Kind.MATRIX);
      gateBias = config.mlpBias() ? param(prefix + "gate_proj.bias", new Shape(i), Kind.BIAS) : null;
      up = param(prefix + "up_proj.weight", new Shape(i, d), Kind.MATRIX);
      upBias = config.mlpBias() ? param(prefix + "up_proj.bias", new Shape(i), Kind.BIAS) : null;
      down = param(prefix + "down_proj.weight", new Shape(d, i), Kind.MATRIX);
      downBias = config.mlpBias() ? param(prefix + "down_proj.bias", new Shape(d), Kind.BIAS) : null;
    }

    NDArray forward(NDArray x) {
      return project(FusedOps.swiglu(project(x, gate, gateBias), project(x, up, upBias), fused), down, downBias);
    }
  }

  /** Initial values of one lora_A [r, in] for a module, or null for zeros (values loaded afterwards). */
  @FunctionalInterface
  private interface LoraInit {
    float[] values(String module, Shape shape);
  }

  /**
   * One adapter set, PEFT's LoraLayer for every target linear layer at once: for the layer W of module m,
   * {@code y = W x + b + scaling * B (A dropout(x))} with A = lora_A [r, in], B = lora_B [out, r] and
   * scaling = alpha / r. Adapters are float32 whatever the base dtype: the layer input is cast to float32 for
   * them, and in a lower precision the sum is taken in float32 and cast back to the activations' dtype (PEFT's
   * {@code result + lora_B(lora_A(dropout(x))) * scaling} promotes, then {@code result.to(torch_result_dtype)}).
   * Dropout acts on the adapter input only, in passes that record gradients. Modules saved whole
   * (embed_tokens, lm_head) are float32 copies used in place of the base module.
   */
  private final class Lora implements AutoCloseable {
    final PeftSettings peft;
    final double scaling;
    /** Base weight name (e.g. model.layers.0.self_attn.q_proj.weight) to {lora_A, lora_B}. */
    final Map<String, Parameter[]> pairs = new java.util.HashMap<>();
    /** Every parameter under its PEFT key, in PEFT's state-dict order (module order, A before B). */
    final LinkedHashMap<String, Parameter> byKey = new LinkedHashMap<>();
    Parameter embedCopy;
    Parameter headCopy;
    /** A reward model's score head, always trained whole beside the adapters (PEFT's SEQ_CLS task). */
    Parameter scoreCopy;
    String fingerprint;

    Lora(PeftSettings peft, boolean trainable, LoraInit init, String fingerprint) {
      this.peft = peft;
      this.scaling = peft.scaling();
      this.fingerprint = fingerprint;
      try (NoGrad ignored = NoGrad.enter()) {
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
          String name = e.getKey();
          Shape shape = e.getValue().getArray().getShape();
          if (name.equals("model.embed_tokens.weight") && peft.modulesToSave().contains("embed_tokens")) {
            embedCopy = copy(AdapterFolder.PREFIX + name, e.getValue(), trainable);
          } else if (name.equals("lm_head.weight") && peft.modulesToSave().contains("lm_head")) {
            headCopy = copy(AdapterFolder.PREFIX + name, e.getValue(), trainable);
          } else if (name.equals(SCORE_WEIGHT)) {
            scoreCopy = copy(AdapterFolder.PREFIX + name, e.getValue(), trainable);
          } else if (name.endsWith(".weight") && shape.dimension() == 2 && isTarget(name)) {
            String module = name.substring(0, name.length() - ".weight".length());
            Shape aShape = new Shape(peft.r(), shape.get(1));
            float[] a = init.values(module, aShape);
            pairs.put(name, new Parameter[] {
                adapter(AdapterFolder.PREFIX + module + ".lora_A.weight", aShape, a, trainable),
                adapter(AdapterFolder.PREFIX + module + ".lora_B.weight", new Shape(shape.get(0), peft.r()), null, trainable)});
          }
        }
      } catch (RuntimeException ex) {
        close();
        throw ex;
      }
    }

    private boolean isTarget(String weightName) {
      for (String t : peft.targetModules()) {
        if (weightName.endsWith("." + t + ".weight")) {
          return true;
        }
      }
      return false;
    }

    private Parameter adapter(String key, Shape shape, float[] values, boolean trainable) {
      NDArray array;
      try (NDManager staging = manager.newSubManager()) {
        NDArray made = values == null ? staging.zeros(shape, DataType.FLOAT32) : owned(staging.create(values, shape));
        array = made;
        array.attach(manager);
      }
      return register(key, array, trainable);
    }

    private Parameter copy(String key, Parameter base, boolean trainable) {
      NDArray array = float32Copy(base.getArray());
      array.attach(manager);
      return register(key, array, trainable);
    }

    private Parameter register(String key, NDArray array, boolean trainable) {
      if (trainable) {
        array.setRequiresGradient(true);
      }
      Parameter p = Parameter.builder().setName(key).setType(Parameter.Type.WEIGHT).build();
      p.setArray(array);
      byKey.put(key, p);
      return p;
    }

    /**
     * y (the base layer's output for x) plus this module's adapter output; {@code rows} (null: all, in order)
     * selects and orders the output rows as the base projection's were. {@code y} is consumed (closed). The
     * intermediates are closed as soon as the sum exists: DJL would keep every one of them until the caller's scope
     * ends (three [tokens, out] arrays per adapted linear), while autograd keeps on its own what backward needs (the
     * adapter's input and A x).
     */
    NDArray add(NDArray x, NDArray y, String weightName, NDArray rows) {
      Parameter[] ab = pairs.get(weightName);
      if (ab == null) {
        return y;
      }
      List<NDArray> done = new ArrayList<>();
      NDArray in = x;
      if (dtype != DataType.FLOAT32) {
        in = Casts.to(x, DataType.FLOAT32);
        done.add(in);
      }
      if (peft.dropout() > 0 && ai.djl.pytorch.jni.JniUtils.isGradMode()) {
        in = in.getNDArrayInternal().dropout(in, (float) peft.dropout(), true).singletonOrThrow();
        done.add(in);
      }
      NDArray b = ab[1].getArray();
      if (rows != null) {
        b = b.get(x.getManager(), new NDIndex("{}", rows));
        done.add(b);
      }
      NDArray ax = linearArrays(in, ab[0].getArray(), null);
      NDArray bax = linearArrays(ax, b, null);
      NDArray delta = ScalarOps.mul(bax, scaling);
      done.addAll(List.of(ax, bax, delta, y));
      NDArray out;
      if (dtype == DataType.FLOAT32) {
        out = y.add(delta);
      } else {
        try (NDArray y32 = Casts.to(y, DataType.FLOAT32); NDArray sum = y32.add(delta)) {
          out = Casts.to(sum, dtype);
        }
      }
      done.forEach(NDArray::close);
      return out;
    }

    /** Logits [..., V] in float32 from the float32 copy of lm_head. */
    NDArray head(NDArray hidden) {
      return wholeCopy(hidden, headCopy);
    }

    /** Scores [N, 1] in float32 from the float32 copy of a reward model's score head. */
    NDArray score(NDArray pooled) {
      return wholeCopy(pooled, scoreCopy);
    }

    private NDArray wholeCopy(NDArray x, Parameter copy) {
      if (dtype == DataType.FLOAT32) {
        return linearArrays(x, copy.getArray(), null);
      }
      try (NDArray h = Casts.to(x, DataType.FLOAT32)) {
        return linearArrays(h, copy.getArray(), null);
      }
    }

    @Override
    public void close() {
      for (Parameter p : byKey.values()) {
        p.getArray().close();
      }
    }
  }

  /** One pre-norm block: x + attn(norm(x)), then + mlp(norm(.)). */
  private final class DecoderLayer {
    final Attention attention;
    final Mlp mlp;
    final Parameter inputNorm;
    final Parameter postAttentionNorm;

    DecoderLayer(String prefix) {
      attention = new Attention(prefix + "self_attn.");
      mlp = new Mlp(prefix + "mlp.");
      inputNorm = param(prefix + "input_layernorm.weight", new Shape(config.hiddenSize()), Kind.NORM);
      postAttentionNorm = param(prefix + "post_attention_layernorm.weight", new Shape(config.hiddenSize()),
          Kind.NORM);
    }

    NDArray forward(NDArray x, Rope rope, NDArray bias, KvCache cache, int layer) {
      NDArray h = x.add(attention.forward(rmsNorm(x, inputNorm), rope, bias, cache, layer));
      return h.add(mlp.forward(rmsNorm(h, postAttentionNorm)));
    }
  }

  /** Keys and values [B, kv_heads, length, head_dim] per layer, kept in the cache's own manager. */
  static final class KvCache implements AutoCloseable {
    private final NDManager manager;
    private final NDArray[][] entries;
    private int length;

    private KvCache(NDManager manager, int layers) {
      this.manager = manager;
      this.entries = new NDArray[layers][2];
    }

    int length() {
      return length;
    }

    /** Appends along time; the result is lent to {@code scope} for this pass and returns to the cache after. */
    private NDArray append(int layer, int kind, NDArray fresh, NDManager scope) {
      NDArray old = entries[layer][kind];
      NDArray joined = old == null ? fresh : old.concat(fresh, 2);
      joined.attach(manager);
      if (old != null) {
        old.close();
      }
      entries[layer][kind] = joined;
      joined.tempAttach(scope);
      return joined;
    }

    private void advance(int time) {
      length += time;
    }

    @Override
    public void close() {
      manager.close();
    }
  }

  static String sha256Hex(String text) {
    return HexFormat.of().formatHex(Safetensors.sha256().digest(text.getBytes(StandardCharsets.UTF_8)));
  }
}
