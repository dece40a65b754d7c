package io.sparkdpo.train;

import ai.djl.ndarray.types.DataType;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.ReferencedShards;
import io.sparkdpo.data.ShardChecksums;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Small real inputs for trainer tests: a model folder of a small Llama config (random, seeded), and prepared
 * folders of seeded synthetic pairs in prepare's layout (Parquet shards + manifest.json), optionally with the
 * reference stage's columns and manifest entry.
 */
public final class TrainingFixtures {
  /** 2 layers, hidden 64, vocab 512: about 0.1M parameters, a step in milliseconds. */
  public static final ModelConfig SMALL = ModelConfig.llama(512, 64, 128, 2, 4, 2, true);

  private TrainingFixtures() {}

  /** Every parameter of a model ({@code builtin:tiny} from {@code builtinSeed}, or a folder) by name. */
  public static Map<String, float[]> parameters(String model, long builtinSeed) {
    Map<String, float[]> out = new LinkedHashMap<>();
    try (CausalLM m = CausalLM.load(model, Storage.local(), CausalLM.device("cpu"), builtinSeed)) {
      m.parameters().forEach((name, p) -> out.put(name, p.getArray().toFloatArray()));
    }
    return out;
  }

  /** The largest absolute difference between same-named parameters. */
  public static double maxDifference(Map<String, float[]> a, Map<String, float[]> b) {
    double max = 0;
    for (String name : a.keySet()) {
      float[] x = a.get(name);
      float[] y = b.get(name);
      for (int i = 0; i < x.length; i++) {
        max = Math.max(max, Math.abs(x[i] - y[i]));
      }
    }
    return max;
  }

  /** Saves a seeded random model of {@code config} as a Hugging Face folder. */
  public static String writeModel(Path dir, ModelConfig config, long seed) {
    try (CausalLM m = CausalLM.create(config, CausalLM.device("cpu"), seed)) {
      m.save(dir.toString(), Storage.local(), DataType.FLOAT32);
    }
    return dir.toString();
  }

  /**
   * Seeded pairs whose chosen responses draw from even token ids and rejected ones from odd ids (a signal DPO can
   * learn), prompts of 3-8 tokens, responses of 2-9, all below {@code vocab}.
   */
  public static List<PreparedPair> pairs(String prefix, int count, int vocab, long seed) {
    SeededRng rng = new SeededRng(seed);
    List<PreparedPair> out = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int[] prompt = ids(rng, 3 + rng.nextInt(6), vocab, -1);
      int[] chosen = ids(rng, 2 + rng.nextInt(8), vocab, 0);
      int[] rejected = ids(rng, 2 + rng.nextInt(8), vocab, 1);
      out.add(new PreparedPair(prefix + "-" + i, "file:/synthetic.jsonl", i + 1, "p", "c", "r", prompt, chosen,
          rejected, prompt.length, chosen.length, rejected.length, false, null, null));
    }
    return out;
  }

  private static int[] ids(SeededRng rng, int n, int vocab, int parity) {
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      int id = 2 + rng.nextInt(vocab - 2);
      if (parity >= 0) {
        id = (id & ~1) | parity; // vocab is even, so this stays inside it
      }
      out[i] = id;
    }
    return out;
  }

  /** The same pairs with reference log-probs. */
  public static PreparedPair withReference(PreparedPair p, double chosen, double rejected) {
    return new PreparedPair(p.pairId(), p.sourceFile(), p.sourceRow(), p.promptText(), p.chosenText(),
        p.rejectedText(), p.promptIds(), p.chosenIds(), p.rejectedIds(), p.promptLen(), p.chosenLen(),
        p.rejectedLen(), p.truncated(), chosen, rejected);
  }

  /**
   * Writes a prepared folder: {@code train/shard-0000i.parquet} per list of {@code trainShards}, one eval shard,
   * and manifest.json ({@code reference.model_fingerprint} when {@code referenceFingerprint} is given).
   */
  public static String writePrepared(Path dir, List<List<PreparedPair>> trainShards, List<PreparedPair> eval,
      String referenceFingerprint) {
    return writePrepared(dir, trainShards, eval, referenceFingerprint, false);
  }

  /** {@link #writePrepared}, the reference columns under their pre-TRL names when {@code legacyColumns}. */
  public static String writePrepared(Path dir, List<List<PreparedPair>> trainShards, List<PreparedPair> eval,
      String referenceFingerprint, boolean legacyColumns) {
    Map<String, Object> splits = new LinkedHashMap<>();
    splits.put("train", split(dir, "train", trainShards, legacyColumns));
    splits.put("eval", split(dir, "eval", List.of(eval), legacyColumns));
    Map<String, Object> manifest = new LinkedHashMap<>();
    manifest.put("stage", referenceFingerprint == null ? "prepare" : "reference");
    manifest.put("version", 1);
    manifest.put("splits", splits);
    if (referenceFingerprint != null) {
      manifest.put("reference", Map.of("model_fingerprint", referenceFingerprint));
    }
    try {
      Files.write(dir.resolve("manifest.json"), Json.MAPPER.writeValueAsBytes(manifest));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return dir.toString();
  }

  private static Map<String, Object> split(Path dir, String name, List<List<PreparedPair>> shards,
      boolean legacyColumns) {
    List<Map<String, Object>> files = new ArrayList<>();
    long rows = 0;
    for (int s = 0; s < shards.size(); s++) {
      String file = name + "/" + String.format("shard-%05d.parquet", s);
      if (legacyColumns) {
        ReferencedShards.writeLegacy(dir.resolve(file), shards.get(s));
      } else {
        ReferencedShards.write(dir.resolve(file), shards.get(s));
      }
      try { // size and sha256 as prepare records them: readers check them
        files.add(Map.of("file", file, "rows", shards.get(s).size(), "tokens", 0, "step_tokens", 0,
            "bytes", Files.size(dir.resolve(file)),
            "sha256", ShardChecksums.sha256(Storage.local(), dir.resolve(file).toString())));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      rows += shards.get(s).size();
    }
    return Map.of("rows", rows, "tokens", 0, "step_tokens", 0, "shards", files);
  }

  /** Defaults plus overrides, e.g. {@code train.per_device_train_batch_size=2}. */
  public static JobConfig config(String... overrides) {
    return ConfigLoader.load(null, List.of(overrides));
  }
}
