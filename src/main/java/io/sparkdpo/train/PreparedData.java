package io.sparkdpo.train;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The training stages' view of a prepared folder ({@code prepare}) or a referenced one (the reference stage: the
 * same layout, its shards with {@code ref_chosen_logps}/{@code ref_rejected_logps}, and in {@code manifest.json} a
 * {@code reference} object whose {@code model_fingerprint} names the model that computed them): the shards of each
 * split with their row counts, and the checks that the data fits the model it trains.
 */
public record PreparedData(String dir, String fingerprint, List<ShardInfo> train, List<ShardInfo> eval,
                           String tokenizerSpec, String tokenizerFingerprint, String referenceFingerprint,
                           String referenceDtype) {
  /** The manifest field the reference stage writes: {@code reference.model_fingerprint}. */
  public static final String REFERENCE = "reference";
  public static final String REFERENCE_FINGERPRINT = "model_fingerprint";
  /** {@code reference.dtype}; manifests written before dtypes existed lack it and were computed in float32. */
  public static final String REFERENCE_DTYPE = "dtype";
  private static final Set<String> STAGES = Set.of(PreparedManifest.STAGE, "reference");

  /** One shard: its full path and row count. */
  public record ShardInfo(String path, long rows) {}

  public PreparedData {
    train = List.copyOf(train);
    eval = List.copyOf(eval);
  }

  public static PreparedData open(Storage storage, String dir) {
    String path = Storage.join(dir, PreparedManifest.FILE);
    if (!storage.exists(path)) {
      throw new IllegalArgumentException(dir + " is not a prepared folder: " + PreparedManifest.FILE + " is missing "
          + "(run spark-dpo prepare, or it did not finish)");
    }
    byte[] bytes = storage.readBytes(path);
    try {
      PreparedManifest m = Json.MAPPER.readValue(bytes, PreparedManifest.class);
      if (!STAGES.contains(m.stage())) {
        throw new IllegalArgumentException(path + " was written by stage '" + m.stage() + "', not prepare or "
            + "reference");
      }
      if (m.splits() == null || m.splits().get(PreparedManifest.TRAIN) == null) {
        throw new IllegalArgumentException(path + " lists no train split");
      }
      JsonNode referenceInfo = Json.MAPPER.readTree(bytes).path(REFERENCE);
      JsonNode reference = referenceInfo.path(REFERENCE_FINGERPRINT);
      // The stage's own fingerprint of its output, else the manifest's bytes (they list every shard's sha256).
      String fingerprint = m.fingerprint() != null ? m.fingerprint() : CheckpointStore.sha256(bytes);
      return new PreparedData(dir, fingerprint, shards(m, dir, PreparedManifest.TRAIN),
          shards(m, dir, PreparedManifest.EVAL),
          m.tokenizer() == null ? null : m.tokenizer().spec(), m.tokenizer() == null ? null
              : m.tokenizer().fingerprint(), reference.isTextual() ? reference.asText() : null,
          referenceInfo.path(REFERENCE_DTYPE).asText("float32"));
    } catch (IOException e) {
      throw new UncheckedIOException(path + " cannot be parsed: " + e.getMessage(), e);
    }
  }

  private static List<ShardInfo> shards(PreparedManifest m, String dir, String split) {
    List<ShardInfo> out = new ArrayList<>();
    PreparedManifest.Split s = m.splits().get(split);
    if (s != null) {
      for (PreparedManifest.Shard shard : s.shards()) {
        out.add(new ShardInfo(Storage.join(dir, shard.file()), shard.rows()));
      }
    }
    return out;
  }

  public long trainRows() {
    return train.stream().mapToLong(ShardInfo::rows).sum();
  }

  public List<String> trainFiles() {
    return train.stream().map(ShardInfo::path).toList();
  }

  public List<String> evalFiles() {
    return eval.stream().map(ShardInfo::path).toList();
  }

  /**
   * The data must have been tokenized by the model's tokenizer (same tokenizer.json and tokenizer_config.json).
   * A model folder without tokenizer files cannot be checked and passes.
   */
  public void requireTokenizerOf(String modelPath, Storage storage) {
    String spec = tokenizerSpecOf(modelPath, storage);
    if (spec == null || tokenizerFingerprint == null) {
      return;
    }
    String modelFingerprint = TextTokenizer.load(spec, storage).fingerprint();
    if (!modelFingerprint.equals(tokenizerFingerprint)) {
      throw new IllegalArgumentException(dir + " was tokenized with tokenizer '" + tokenizerSpec + "' (fingerprint "
          + shortFp(tokenizerFingerprint) + "), but model " + modelPath + " uses another (fingerprint "
          + shortFp(modelFingerprint) + "): prepare the data again with --set prepare.tokenizer=" + spec);
    }
  }

  /**
   * Precomputed reference log-probs must come from the configured reference model: the manifest's
   * {@code reference.model_fingerprint} must equal {@code configuredFingerprint}.
   */
  public void requireReferenceFrom(String modelPath, String configuredFingerprint) {
    requireReferenceFrom(modelPath, configuredFingerprint, null);
  }

  /**
   * {@link #requireReferenceFrom(String, String)}, and the log-probs were computed in {@code configuredDtype} (null:
   * any): a reference computed in another dtype than the trainer expects gives implicit rewards that are not zero at
   * step 0.
   */
  public void requireReferenceFrom(String modelPath, String configuredFingerprint, String configuredDtype) {
    if (referenceFingerprint == null) {
      throw new IllegalArgumentException(dir + " holds no precomputed reference log-probs (its manifest has no "
          + REFERENCE + "." + REFERENCE_FINGERPRINT + "): run the reference stage on it, or set "
          + "train.reference_mode=in_loop");
    }
    if (!referenceFingerprint.equals(configuredFingerprint)) {
      throw new IllegalArgumentException("the reference log-probs in " + dir + " were computed by a model with "
          + "fingerprint " + shortFp(referenceFingerprint) + ", but the configured reference model " + modelPath
          + " has fingerprint " + shortFp(configuredFingerprint) + ": run the reference stage with this model, or "
          + "set train.reference_mode=in_loop");
    }
    if (configuredDtype != null && !configuredDtype.equals(referenceDtype)) {
      throw new IllegalArgumentException("the reference log-probs in " + dir + " were computed in " + referenceDtype
          + ", but this run's reference.dtype is " + configuredDtype + ": run the reference stage with "
          + "--set reference.dtype=" + configuredDtype + ", or set reference.dtype=" + referenceDtype);
    }
  }

  /** The tokenizer spec ({@code builtin} or a folder) of a model path; null when the folder has none. */
  public static String tokenizerSpecOf(String modelPath, Storage storage) {
    if (modelPath.equals(CausalLM.BUILTIN_TINY)) {
      return "builtin";
    }
    return storage.exists(Storage.join(modelPath, "tokenizer.json")) ? modelPath : null;
  }

  private static String shortFp(String fp) {
    return fp.length() > 16 ? fp.substring(0, 16) : fp;
  }
}
