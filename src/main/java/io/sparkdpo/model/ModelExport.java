package io.sparkdpo.model;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * Exports a model (a training run's {@code RUN/model}, any Hugging Face folder, or {@code builtin:tiny}) as a
 * self-contained Hugging Face folder: config.json, model.safetensors (or shards of at most {@code maxShardBytes} with
 * model.safetensors.index.json) in float32, bfloat16 or float16, generation_config.json, tokenizer.json and
 * tokenizer_config.json. The source is loaded in its own dtype (a bf16 checkpoint is never widened in memory) and
 * streamed out tensor by tensor. The export is checked by reloading it in the source's dtype and comparing its
 * log-probs of fixed probe sequences with the source's: the difference is the rounding of the weights alone
 * (float32: within 1e-6 nats; narrower: measured and recorded). {@code spark-dpo-export.json} (written last)
 * records source, dtype and the check, and makes an export of the same source in the same form a no-op. A LoRA
 * adapter on a base is exported as a PEFT adapter folder ({@link #exportAdapter}) or merged into a Hugging Face folder
 * ({@link #exportMerged}).
 */
public final class ModelExport {
  public static final String MANIFEST = "spark-dpo-export.json";
  /** Files a usable Hugging Face causal-LM folder must hold (weights may also be sharded with an index). */
  public static final List<String> REQUIRED = List.of(ModelFolder.CONFIG, ModelFolder.GENERATION_CONFIG,
      "tokenizer.json", "tokenizer_config.json");
  /** A float32 export must reproduce the source's summed log-probs this closely (same bytes, same kernels). */
  public static final double FLOAT32_TOLERANCE = 1e-6;
  /**
   * A float32 merge must reproduce base + adapter's summed log-probs this closely: W + s B A rounded once per weight
   * against x W + s (x A) B computed apart, over 47 tokens.
   */
  public static final double MERGED_FLOAT32_TOLERANCE = 1e-4;
  /** The files of an adapter export (a PEFT adapter folder). */
  public static final List<String> ADAPTER_FILES = List.of(CausalLM.ADAPTER_CONFIG, CausalLM.ADAPTER_WEIGHTS);
  static final int VERSION = 1;
  private static final int PROBES = 4;
  private static final int PROBE_LENGTH = 48;

  private ModelExport() {}

  /**
   * {@code MANIFEST}'s content.
   *
   * @param maxLogProbDifference the largest |summed log-prob of a probe sequence, source - export| in nats
   */
  public record Manifest(
      @JsonProperty("version") int version,
      @JsonProperty("created_at") String createdAt,
      @JsonProperty("source") String source,
      @JsonProperty("source_fingerprint") String sourceFingerprint,
      @JsonProperty("dtype") String dtype,
      @JsonProperty("fingerprint") String fingerprint,
      @JsonProperty("export_fingerprint") String exportFingerprint,
      @JsonProperty("probe_sequences") int probeSequences,
      @JsonProperty("probe_tokens") int probeTokens,
      @JsonProperty("max_log_prob_difference") double maxLogProbDifference) {}

  /** @param upToDate the folder already held this export and nothing was written */
  public record Result(boolean upToDate, String outputDir, Manifest manifest) {}

  /** {@link #export(Storage, String, String, String, long, long)} with transformers' default shard size (5 GB). */
  public static Result export(Storage storage, String source, String outputDir, String dtype, long builtinSeed) {
    return export(storage, source, outputDir, dtype, builtinSeed, ModelFolder.DEFAULT_MAX_SHARD_BYTES);
  }

  /**
   * @param dtype {@code float32}, {@code bfloat16} or {@code float16}
   * @param builtinSeed initialisation seed when {@code source} is a built-in model
   * @param maxShardBytes largest weight file; a larger model is sharded with an index
   */
  public static Result export(Storage storage, String source, String outputDir, String dtype, long builtinSeed,
      long maxShardBytes) {
    DataType type = CausalLM.saveDtype(dtype);
    ModelFolder.configOf(storage, source); // before hashing gigabytes of weights: a bad config fails at once
    String sourceFingerprint = CausalLM.fingerprintOf(source, storage, builtinSeed);
    String shards = maxShardBytes == ModelFolder.DEFAULT_MAX_SHARD_BYTES ? "" : "\nmax_shard_size=" + maxShardBytes;
    String fingerprint = CausalLM.sha256Hex("export-v" + VERSION + "\n" + sourceFingerprint + "\n" + dtype + shards);
    Optional<Manifest> existing = complete(storage, outputDir, fingerprint, REQUIRED);
    if (existing.isPresent()) {
      return new Result(true, outputDir, existing.get());
    }
    storage.delete(Storage.join(outputDir, MANIFEST));
    double maxDiff;
    try (CausalLM model = CausalLM.load(source, storage, CausalLM.device("cpu"), builtinSeed)) {
      model.save(outputDir, storage, type, maxShardBytes);
      requireFiles(storage, source, outputDir);
      List<int[]> probes = probes(model.config().vocabSize());
      double[] before = sums(model, probes);
      try (CausalLM reloaded = CausalLM.load(outputDir, storage, CausalLM.device("cpu"), builtinSeed,
          model.dtype())) {
        maxDiff = maxDifference(before, sums(reloaded, probes));
      }
    }
    if (type == DataType.FLOAT32 && !(maxDiff <= FLOAT32_TOLERANCE)) {
      throw new IllegalStateException("the float32 export in " + outputDir + " gives log-probs " + maxDiff
          + " nats away from " + source + "'s (limit " + FLOAT32_TOLERANCE + ")");
    }
    Manifest m = new Manifest(VERSION, Instant.now().toString(), source, sourceFingerprint, dtype, fingerprint,
        ModelFolder.fingerprint(storage, outputDir), PROBES, PROBES * PROBE_LENGTH, maxDiff);
    storage.writeJson(Storage.join(outputDir, MANIFEST), m);
    return new Result(false, outputDir, m);
  }

  /**
   * A PEFT adapter folder trained on {@code base}, exported as a PEFT adapter folder (adapter_config.json and
   * adapter_model.safetensors, byte for byte) that loads on the base: it is checked by loading it onto the base and
   * comparing the probes' log-probs with the source adapter's (the same bytes: no difference). The same base and
   * adapter again: a no-op.
   */
  public static Result exportAdapter(Storage storage, String base, String adapter, String outputDir,
      long builtinSeed) {
    AdapterFolder.settings(storage, adapter);
    String sourceFingerprint = AdapterFolder.withBase(CausalLM.fingerprintOf(base, storage, builtinSeed),
        AdapterFolder.fingerprint(storage, adapter));
    String fingerprint = CausalLM.sha256Hex("export-adapter-v" + VERSION + "\n" + sourceFingerprint);
    Optional<Manifest> existing = complete(storage, outputDir, fingerprint, ADAPTER_FILES);
    if (existing.isPresent()) {
      return new Result(true, outputDir, existing.get());
    }
    storage.delete(Storage.join(outputDir, MANIFEST));
    for (String f : ADAPTER_FILES) {
      storage.writeBytes(Storage.join(outputDir, f), storage.readBytes(Storage.join(adapter, f)));
    }
    double maxDiff;
    try (CausalLM model = CausalLM.load(base, storage, CausalLM.device("cpu"), builtinSeed)) {
      model.loadAdapter(adapter, storage);
      List<int[]> probes = probes(model.config().vocabSize());
      double[] before = sums(model, probes);
      model.loadAdapter(outputDir, storage);
      maxDiff = maxDifference(before, sums(model, probes));
    }
    if (!(maxDiff == 0)) {
      throw new IllegalStateException("the adapter exported to " + outputDir + " gives log-probs " + maxDiff
          + " nats away from " + adapter + "'s on " + base);
    }
    Manifest m = new Manifest(VERSION, Instant.now().toString(), base + " + adapter " + adapter, sourceFingerprint,
        "float32", fingerprint, AdapterFolder.fingerprint(storage, outputDir), PROBES, PROBES * PROBE_LENGTH, maxDiff);
    storage.writeJson(Storage.join(outputDir, MANIFEST), m);
    return new Result(false, outputDir, m);
  }

  /**
   * {@code base} with a PEFT adapter folded in ({@link CausalLM#saveMerged}: W + scaling B A in float32, written in
   * {@code dtype}, shards of at most {@code maxShardBytes}), as a self-contained Hugging Face folder. Checked by
   * reloading it and comparing the probes' log-probs with base + adapter's; a float32 merge must agree within
   * {@link #MERGED_FLOAT32_TOLERANCE}. The same base, adapter, dtype and shard size again: a no-op.
   */
  public static Result exportMerged(Storage storage, String base, String adapter, String outputDir, String dtype,
      long builtinSeed, long maxShardBytes) {
    DataType type = CausalLM.saveDtype(dtype);
    ModelFolder.configOf(storage, base);
    AdapterFolder.settings(storage, adapter);
    String sourceFingerprint = AdapterFolder.withBase(CausalLM.fingerprintOf(base, storage, builtinSeed),
        AdapterFolder.fingerprint(storage, adapter));
    String shards = maxShardBytes == ModelFolder.DEFAULT_MAX_SHARD_BYTES ? "" : "\nmax_shard_size=" + maxShardBytes;
    String fingerprint = CausalLM.sha256Hex("export-merged-v" + VERSION + "\n" + sourceFingerprint + "\n" + dtype
        + shards);
    Optional<Manifest> existing = complete(storage, outputDir, fingerprint, REQUIRED);
    if (existing.isPresent()) {
      return new Result(true, outputDir, existing.get());
    }
    storage.delete(Storage.join(outputDir, MANIFEST));
    double maxDiff;
    try (CausalLM model = CausalLM.load(base, storage, CausalLM.device("cpu"), builtinSeed)) {
      model.loadAdapter(adapter, storage);
      List<int[]> probes = probes(model.config().vocabSize());
      double[] before = sums(model, probes); // the model as loaded, before anything else touches it
      model.saveMerged(outputDir, storage, type, maxShardBytes);
      requireFiles(storage, base, outputDir);
      try (CausalLM reloaded = CausalLM.load(outputDir, storage, CausalLM.device("cpu"), builtinSeed,
          type == DataType.FLOAT32 ? DataType.FLOAT32 : model.dtype())) {
        maxDiff = maxDifference(before, sums(reloaded, probes));
      }
    }
    if (type == DataType.FLOAT32 && !(maxDiff <= MERGED_FLOAT32_TOLERANCE)) {
      throw new IllegalStateException("the float32 merge in " + outputDir + " gives log-probs " + maxDiff
          + " nats away from " + base + " + " + adapter + "'s (limit " + MERGED_FLOAT32_TOLERANCE + ")");
    }
    Manifest m = new Manifest(VERSION, Instant.now().toString(), base + " + adapter " + adapter, sourceFingerprint,
        dtype, fingerprint, ModelFolder.fingerprint(storage, outputDir), PROBES, PROBES * PROBE_LENGTH, maxDiff);
    storage.writeJson(Storage.join(outputDir, MANIFEST), m);
    return new Result(false, outputDir, m);
  }

  private static double maxDifference(double[] a, double[] b) {
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  private static void requireFiles(Storage storage, String source, String outputDir) {
    for (String f : REQUIRED) {
      if (!storage.exists(Storage.join(outputDir, f))) {
        throw new IllegalArgumentException(source + " has no " + f + " to export (a Hugging Face folder needs the "
            + "tokenizer files next to the weights)");
      }
    }
  }

  /**
   * Summed log-probs of the probe sequences (token 0 as the prompt, the rest as the response), one forward pass
   * without graph.
   */
  public static double[] sums(CausalLM model, List<int[]> sequences) {
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    for (int[] s : sequences) {
      prompts.add(new int[] {s[0]});
      responses.add(java.util.Arrays.copyOfRange(s, 1, s.length));
    }
    try (NDManager scope = NDManager.newBaseManager(model.device())) {
      return new SequenceLogProbs(model).compute(scope, prompts, responses, false).sums();
    }
  }

  /** Fixed pseudo-random token sequences (the same for every export of a vocabulary size). */
  public static List<int[]> probes(int vocabSize) {
    SplittableRandom random = new SplittableRandom(20251123L);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < PROBES; i++) {
      out.add(random.ints(PROBE_LENGTH, 0, vocabSize).toArray());
    }
    return out;
  }

  private static Optional<Manifest> complete(Storage storage, String dir, String fingerprint, List<String> required) {
    String path = Storage.join(dir, MANIFEST);
    if (!storage.exists(path)) {
      return Optional.empty();
    }
    try {
      Manifest m = Json.MAPPER.readValue(storage.readBytes(path), Manifest.class);
      String written = required == ADAPTER_FILES ? AdapterFolder.fingerprint(storage, dir)
          : ModelFolder.fingerprint(storage, dir);
      if (!fingerprint.equals(m.fingerprint()) || !m.exportFingerprint().equals(written)) {
        return Optional.empty();
      }
      for (String f : required) {
        if (!storage.exists(Storage.join(dir, f))) {
          return Optional.empty();
        }
      }
      return Optional.of(m);
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }
}
