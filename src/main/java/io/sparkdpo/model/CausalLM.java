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
 * linears in the model's dtype; logits handed out in float32.
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
  /** The activation checkpoints this thread's training passes feed, while a caller holds them open. */
  private final ThreadLocal<ActivationCheckpoints> checkpointing = new ThreadLocal<>();

  private final Parameter embedTokens;
  private final List<DecoderLayer> layers = new ArrayList<>();
  private final Parameter finalNorm;
  private final Parameter lmHead;
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
      lmHead = config.tieWordEmbeddings() ? null
          : param("lm_head.weight", new Shape(config.vocabSize(), d), Kind.MATRIX);
      // Only float32 weights train; bf16 arrays come from TorchScript as inference tensors, which refuse it.
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
      return create(ModelConfig.tiny(), device, builtinSeed, true, dtype == null ? DataType.FLOAT32 : dtype);
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
    for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
      String name = e.getKey();
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
      boolean ignored = name.endsWith("rotary_emb.inv_freq")
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
      if (dtype == DataType.FLOAT32) {
        target.setRequiresGradient(true);
      }
    });
  }

  /** Streams one tensor's values into {@code target} (this model's dtype), row slice by row slice. */
  private void fill(NDArray target, Safetensors.TensorReader data) {
    Safetensors.Dtype as = fileDtype(dtype);
    try (NoGrad ignored = NoGrad.enter()) {
      if (Device.cpu().equals(device)) {
        forEachSlice(target, as.bytes, slice -> data.read(slice, as));
        return;
      }
      // Other devices: through a host copy of this one tensor (toByteBuffer of a device array is a copy).
      try (NDManager host = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
        NDArray staged = Casts.empty(host, target.getShape(), dtype);
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
  // Forward

  /**
   * Next-token logits [B, T, V] in float32 for token ids [B, T] (int32 or int64) at positions 0..T-1 with a
   * causal mask (right padding needs no other mask). With {@code training} the pass is recorded for autograd
   * (inside a GradientCollector); without it, gradient recording is off on this thread for the call.
   * The result is attached to {@code inputIds}' manager.
   */
  public NDArray logits(NDArray inputIds, boolean training) {
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
    if (training) {
      return lmHead(hidden);
    }
    try (NoGrad ignored = NoGrad.enter()) {
      return lmHead(hidden);
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

  /** The decoder stack and final norm: hidden states [B, T or 1, d] attached to {@code inputIds}' manager. */
  private NDArray hiddenStates(NDArray inputIds, long[] rowStart, boolean[][] keyMask, KvCache cache,
      boolean lastOnly) {
    NDManager caller = inputIds.getManager();
    Shape shape = inputIds.getShape();
    if (shape.dimension() != 2) {
      throw new IllegalArgumentException("input ids must be [batch, time], got " + shape);
    }
    int batch = Math.toIntExact(shape.get(0));
    int time = Math.toIntExact(shape.get(1));
    int past = cache == null ? 0 : cache.length();
    if (past + time > config.maxPositionEmbeddings()) {
      throw new IllegalArgumentException("sequence of " + (past + time) + " tokens exceeds max_position_embeddings="
          + config.maxPositionEmbeddings());
    }
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

  /** The token embedding of int64 ids [B, T]: [B, T, d], attached to ids' manager. */
  private NDArray embed(NDArray ids) {
    return ids.getNDArrayInternal().embedding(ids, embedTokens.getArray(), SparseFormat.DENSE).singletonOrThrow();
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
    Shape shape = inputIds.getShape();
    if (shape.dimension() != 2) {
      throw new IllegalArgumentException("input ids must be [batch, time], got " + shape);
    }
    int batch = Math.toIntExact(shape.get(0));
    int time = Math.toIntExact(shape.get(1));
    if (time > config.maxPositionEmbeddings()) {
      throw new IllegalArgumentException("sequence of " + time + " tokens exceeds max_position_embeddings="
          + config.maxPositionEmbeddings());
    }
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
        return embedTokens.getArray().hasGradient();
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
    NDArray logits = linear(hidden, lmHead == null ? embedTokens : lmHead, null);
    if (dtype == DataType.FLOAT32) {
      return logits;
    }
    try (logits) {
      return logits.toType(DataType.FLOAT32, false); // transformers' logits.float(): losses run in float32
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
    if (dtype == DataType.FLOAT32) {
      return mask;
    }
    try (mask) {
      return Casts.to(dtype == DataType.FLOAT16 ? mask.maximum(-65504f) : mask, dtype); // float16 has no -1e30
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

  private static NDArray linear(NDArray x, Parameter weight, Parameter bias) {
    return linearArrays(x, weight.getArray(), bias == null ? null : bias.getArray());
  }

  /** x W^T + b in one fused libtorch call; the result is attached to x's manager. */
  private static NDArray linearArrays(NDArray x, NDArray weight, NDArray bias) {
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

    /** x [B, T, heads, hd] in interleaved order, rotated. */
    NDArray apply(NDArray x) {
      return FusedOps.rope(x, rotation, fused);
    }
  }

  /**
   * RMSNorm as HF computes it, x / sqrt(mean(x^2) + eps) * weight, the mean square from one 2-norm reduction;
   * in a lower precision the normalisation runs in float32 and is cast back before the weight multiplies it
   * ({@code weight * x.to(input_dtype)}).
   */
  private NDArray rmsNorm(NDArray x, Parameter weight) {
    if (dtype == DataType.FLOAT32) {
      return normalise(x).mul(weight.getArray());
    }
    NDArray normalised = normalise(x.toType(DataType.FLOAT32, false));
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
      NDArray query = rope.apply(linearArrays(x, rope.gather(scope, q, rope.queryRows),
          rope.gather(scope, qBias, rope.queryRows)).reshape(b, t, heads, hd)).transpose(0, 2, 1, 3);
      NDArray key = rope.apply(linearArrays(x, rope.gather(scope, k, rope.keyRows),
          rope.gather(scope, kBias, rope.keyRows)).reshape(b, t, kvHeads, hd)).transpose(0, 2, 1, 3);
      NDArray value = linear(x, v, vBias).reshape(b, t, kvHeads, hd).transpose(0, 2, 1, 3);
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
      return linear(y.transpose(0, 2, 1, 3).reshape(b, t, heads * hd), o, oBias);
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
      return linear(FusedOps.swiglu(linear(x, gate, gateBias), linear(x, up, upBias), fused), down, downBias);
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
