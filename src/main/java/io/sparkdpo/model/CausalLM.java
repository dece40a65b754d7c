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
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

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
  private final LinkedHashMap<String, Parameter> parameters = new LinkedHashMap<>();
  private final String fingerprint;
  private final ModelFolder.Companions companions;
  private WeightSource weights; // only while constructing
  private final boolean builtin;
  private volatile boolean fused = true;

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

  private CausalLM(ModelConfig config, Device device, WeightSource weights, String fingerprint,
      ModelFolder.Companions companions, boolean builtin) {
    this.config = config;
    this.ropeInverseFrequencies = config.ropeScaling().inverseFrequencies(config.ropeTheta(), config.headDim());
    this.device = device;
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
      for (Parameter p : parameters.values()) {
        p.getArray().setRequiresGradient(true);
      }
      this.weights = null;
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Construction and checkpoints

  /** A randomly initialised model; same config and seed give the same weights on any machine. */
  public static CausalLM create(ModelConfig config, Device device, long seed) {
    return create(config, device, seed, false);
  }

  private static CausalLM create(ModelConfig config, Device device, long seed, boolean builtin) {
    WeightSource init = (m, name, shape, kind) -> {
      float[] values = new float[Math.toIntExact(shape.size())];
      switch (kind) {
        case NORM -> Arrays.fill(values, 1f);
        case BIAS -> { }
        case MATRIX -> {
          SplittableRandom random = new SplittableRandom(seed ^ (long) name.hashCode() * 0x9E3779B97F4A7C15L);
          for (int i = 0; i < values.length; i++) {
            values[i] = (float) (random.nextGaussian() * config.initializerRange());
          }
        }
      }
      return m.create(values, shape);
    };
    String fp = randomInitFingerprint(config, seed);
    return new CausalLM(config, device, init, fp,
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

  /** The model of a {@code model:} config section: its path, device and seed. */
  public static CausalLM load(ModelSettings settings, Storage storage) {
    return load(settings.path(), storage, device(settings.device()), settings.seed());
  }

  /**
   * Loads {@code builtin:tiny} (the tiny config, initialised from {@code builtinSeed}, with the built-in
   * tokenizer as its companion files) or a Hugging Face model folder (local, hdfs:, s3a:). Weights stored as
   * F16 or BF16 are widened to float32. Missing, unexpected or misshapen tensors fail naming file and tensor.
   */
  public static CausalLM load(String folderOrBuiltin, Storage storage, Device device, long builtinSeed) {
    if (folderOrBuiltin.equals(BUILTIN_TINY)) {
      return create(ModelConfig.tiny(), device, builtinSeed, true);
    }
    if (folderOrBuiltin.startsWith("builtin:")) {
      throw new IllegalArgumentException("unknown built-in model " + folderOrBuiltin + " (known: " + BUILTIN_TINY + ")");
    }
    String folder = folderOrBuiltin;
    ModelConfig config = ModelFolder.readConfig(storage, folder);
    Map<String, LoadedTensor> tensors = new LinkedHashMap<>();
    String fingerprint = ModelFolder.readWeights(storage, folder,
        (file, entry, data) -> tensors.put(entry.name(), new LoadedTensor(file, entry.shape(), data)));
    WeightSource fromFile = (m, name, shape, kind) -> {
      LoadedTensor t = tensors.remove(name);
      if (t == null) {
        throw new IllegalArgumentException(folder + ": tensor " + name + " is missing (expected shape " + shape
            + " for " + config.architecture() + ")");
      }
      if (!Arrays.equals(t.shape(), shape.getShape())) {
        throw new IllegalArgumentException(t.file() + ": tensor " + name + " has shape " + Arrays.toString(t.shape())
            + " but config.json implies " + shape);
      }
      return m.create(t.data(), shape, DataType.FLOAT32);
    };
    CausalLM model = new CausalLM(config, device, fromFile, fingerprint,
        ModelFolder.Companions.folder(storage, folder), false);
    // Checkpoints may carry what HF itself ignores: the tied head's copy and old rotary caches.
    tensors.keySet().removeIf(n -> n.endsWith("rotary_emb.inv_freq")
        || (config.tieWordEmbeddings() && n.equals("lm_head.weight")));
    if (!tensors.isEmpty()) {
      String name = tensors.keySet().iterator().next();
      model.close();
      throw new IllegalArgumentException(tensors.get(name).file() + ": unexpected tensor " + name
          + " (not part of a " + config.architecture() + " with this config.json; " + tensors.size()
          + " unexpected in all)");
    }
    return model;
  }

  private record LoadedTensor(String file, long[] shape, ByteBuffer data) {}

  /**
   * Replaces every parameter's values with those of a model folder of the same config, in place: the
   * {@link Parameter} and {@link NDArray} objects stay the same (so an optimizer holding them keeps working),
   * the replaced native tensors are freed, and gradients stay switched on.
   */
  public void loadWeights(String folder, Storage storage) {
    ModelConfig other = ModelFolder.readConfig(storage, folder);
    if (!other.sameTensors(config)) {
      throw new IllegalArgumentException(folder + ": config.json describes other tensors than the loaded model's");
    }
    Map<String, LoadedTensor> tensors = new LinkedHashMap<>();
    ModelFolder.readWeights(storage, folder,
        (file, entry, data) -> tensors.put(entry.name(), new LoadedTensor(file, entry.shape(), data)));
    for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
      LoadedTensor t = tensors.get(e.getKey());
      NDArray target = e.getValue().getArray();
      if (t == null) {
        throw new IllegalArgumentException(folder + ": tensor " + e.getKey() + " is missing");
      }
      if (!Arrays.equals(t.shape(), target.getShape().getShape())) {
        throw new IllegalArgumentException(t.file() + ": tensor " + e.getKey() + " has shape "
            + Arrays.toString(t.shape()) + ", the model has " + target.getShape());
      }
    }
    try (NDManager scope = manager.newSubManager(); NoGrad ignored = NoGrad.enter()) {
      for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
        LoadedTensor t = tensors.get(e.getKey());
        NDArray target = e.getValue().getArray();
        try (NDArray staged = scope.create(t.data(), target.getShape(), DataType.FLOAT32)) {
          // A clone owns its memory; the staged array only aliases the read buffer.
          NDArray owned = staged.duplicate();
          owned.attach(manager);
          target.intern(owned);
          target.setRequiresGradient(true);
        }
      }
    }
  }

  /**
   * Writes the model as a Hugging Face folder: weights in {@code dtype} (FLOAT32 or BFLOAT16), config.json,
   * generation_config.json and, when the model came from a folder or is built in, its tokenizer files.
   */
  public void save(String folder, Storage storage, DataType dtype) {
    save(folder, storage, dtype, ModelFolder.DEFAULT_MAX_SHARD_BYTES);
  }

  /** {@link #save(String, Storage, DataType)} with shards of at most {@code maxShardBytes}. */
  public void save(String folder, Storage storage, DataType dtype, long maxShardBytes) {
    Safetensors.Dtype fileDtype = switch (dtype) {
      case FLOAT32 -> Safetensors.Dtype.F32;
      case BFLOAT16 -> Safetensors.Dtype.BF16;
      default -> throw new IllegalArgumentException("save dtype must be FLOAT32 or BFLOAT16 (got " + dtype + ")");
    };
    if (builtin && companions.read("tokenizer.json").isEmpty()) {
      // A built-in model saved without its tokenizer would be a folder nothing downstream can use.
      throw new IllegalStateException("cannot save " + BUILTIN_TINY + ": the built-in tokenizer ("
          + BUILTIN_TOKENIZER + "tokenizer.json) is not on the classpath; the jar must package sample-data/tokenizer");
    }
    List<Safetensors.Tensor> tensors = new ArrayList<>();
    parameters.forEach((name, p) -> tensors.add(new Safetensors.Tensor(name, p.getArray().getShape().getShape(),
        () -> p.getArray().toByteBuffer())));
    ModelFolder.write(storage, folder, config, tensors, fileDtype, maxShardBytes, companions);
  }

  /** The save dtype of {@code model.save_dtype} ({@code float32} or {@code bfloat16}). */
  public static DataType saveDtype(String name) {
    return switch (name) {
      case "float32" -> DataType.FLOAT32;
      case "bfloat16" -> DataType.BFLOAT16;
      default -> throw new IllegalArgumentException("save dtype must be float32 or bfloat16 (got " + name + ")");
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
    if (training) {
      return forward(inputIds, null, null, null, false);
    }
    try (NoGrad ignored = NoGrad.enter()) {
      return forward(inputIds, null, null, null, false);
    }
  }

  /**
   * The general forward pass, for generation: {@code rowStart[b]} is the position of row b's first new token
   * (null: the cache length for every row); {@code keyMask[b][j]} false hides key j from row b (null: all
   * visible); {@code cache} holds earlier keys and values and receives the new ones (null: none);
   * {@code lastOnly} computes logits for the last position only ([B, 1, V]).
   */
  NDArray forward(NDArray inputIds, long[] rowStart, boolean[][] keyMask, KvCache cache, boolean lastOnly) {
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
      NDArray x = ids.getNDArrayInternal().embedding(ids, embedTokens.getArray(), SparseFormat.DENSE)
          .singletonOrThrow();
      for (int i = 0; i < layers.size(); i++) {
        x = layers.get(i).forward(x, rope, bias, cache, i);
      }
      if (lastOnly && time > 1) {
        x = x.get(":, -1:, :");
      }
      x = rmsNorm(x, finalNorm);
      NDArray logits = linear(x, lmHead == null ? embedTokens : lmHead, null);
      if (cache != null) {
        cache.advance(time);
      }
      logits.attach(caller);
      return logits;
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
    return owned(scope.create(bias, new Shape(rows, 1, time, keys)));
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

  /** RMSNorm as HF computes it, x / sqrt(mean(x^2) + eps) * weight, the mean square from one 2-norm reduction. */
  private NDArray rmsNorm(NDArray x, Parameter weight) {
    NDArray meanSquare = ScalarOps.div(x.norm(2, new int[] {-1}, true).square(), config.hiddenSize());
    return x.mul(ScalarOps.pow(meanSquare.add(config.rmsNormEps()), -0.5)).mul(weight.getArray());
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
