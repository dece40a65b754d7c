package io.sparkdpo.inference;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code manifest.json} of a referenced folder: the prepared manifest it was made from (same splits, rows, tokens and
 * histograms; {@code stage} {@value #STAGE}, the shards' new sizes and checksums, this stage's fingerprint), plus a
 * {@code reference} object naming the model whose log-probs the shards carry. The trainer compares
 * {@code reference.model_fingerprint} with its configured reference model. Written last.
 */
public record ReferenceManifest(PreparedManifest data, Info reference) {
  public static final String STAGE = "reference";
  /** The manifest field that holds {@link Info}. */
  public static final String FIELD = "reference";

  /**
   * @param model the model path as configured
   * @param modelFingerprint {@code CausalLM.fingerprint()} of the model that computed the log-probs
   * @param dataFingerprint the prepared folder's content: its fingerprint and every shard's sha256
   * @param data the prepared folder read
   * @param dtype the dtype the reference model held and computed in ({@code reference.dtype}, resolved)
   * @param pairs rows scored (train + eval)
   * @param responseTokens tokens whose log-probs were summed (chosen + rejected responses)
   * @param stepTokens tokens run through the model, the prompt once with each response (2P + C + R)
   * @param modelLoads model loads on executors (one per JVM that ran tasks)
   * @param tasks tasks of the scoring stage
   * @param executors JVMs whose tasks used the model
   * @param seconds wall time of the Spark job
   * @param adapter the PEFT adapter folder applied to {@code model} (model.adapter), null when none; the model
   *     fingerprint is then base + adapter's
   */
  public record Info(
      @JsonProperty("model") String model,
      @JsonProperty("model_fingerprint") String modelFingerprint,
      @JsonProperty("data_fingerprint") String dataFingerprint,
      @JsonProperty("data") String data,
      @JsonProperty("device") String device,
      @JsonProperty("dtype") String dtype,
      @JsonProperty("batch_tokens") int batchTokens,
      @JsonProperty("pairs") long pairs,
      @JsonProperty("response_tokens") long responseTokens,
      @JsonProperty("step_tokens") long stepTokens,
      @JsonProperty("model_loads") long modelLoads,
      @JsonProperty("tasks") long tasks,
      @JsonProperty("executors") int executors,
      @JsonProperty("seconds") double seconds,
      @JsonProperty("adapter") String adapter) {

    /** Forward-pass throughput of the stage: step tokens per second of wall time. */
    public double tokensPerSecond() {
      return seconds > 0 ? stepTokens / seconds : Double.NaN;
    }
  }

  public void write(Storage storage, String dir) {
    Map<String, Object> tree = Json.MAPPER.convertValue(data, new TypeReference<TreeMap<String, Object>>() {});
    tree.put(FIELD, reference);
    storage.writeJson(Storage.join(dir, PreparedManifest.FILE), tree);
  }

  /** The manifest of a referenced folder; fails clearly when the folder is not one. */
  public static ReferenceManifest read(Storage storage, String dir) {
    String path = Storage.join(dir, PreparedManifest.FILE);
    if (!storage.exists(path)) {
      throw new IllegalArgumentException(dir + " is not a referenced folder: " + PreparedManifest.FILE
          + " is missing (run spark-dpo reference, or it did not finish)");
    }
    try {
      JsonNode tree = Json.MAPPER.readTree(storage.readBytes(path));
      PreparedManifest data = Json.MAPPER.treeToValue(tree, PreparedManifest.class);
      if (!STAGE.equals(data.stage()) || !tree.has(FIELD)) {
        throw new IllegalArgumentException(path + " was written by stage '" + data.stage() + "', not reference");
      }
      return new ReferenceManifest(data, Json.MAPPER.treeToValue(tree.get(FIELD), Info.class));
    } catch (IOException e) {
      throw new UncheckedIOException(path + " cannot be parsed: " + e.getMessage(), e);
    }
  }
}
