package io.sparkdpo.data;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;

/**
 * {@code DIR/manifest.json} of a prepared folder: what was read (input fingerprint), how (tokenizer, template,
 * redacted config), what came out (counts, splits, shards with checksums, quarantine files, length histograms)
 * and the fingerprint that decides whether re-running prepare has anything to do. Later stages read this instead
 * of re-deriving anything. Written last, so a folder without it is incomplete.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record PreparedManifest(
    @JsonProperty("stage") String stage,
    @JsonProperty("version") int version,
    @JsonProperty("created_at") String createdAt,
    @JsonProperty("fingerprint") String fingerprint,
    @JsonProperty("input") Input input,
    @JsonProperty("tokenizer") TokenizerInfo tokenizer,
    @JsonProperty("template") TemplateInfo template,
    @JsonProperty("config") JsonNode config,
    @JsonProperty("counts") Counts counts,
    @JsonProperty("splits") Map<String, Split> splits,
    @JsonProperty("quarantine") List<QuarantineFile> quarantine,
    @JsonProperty("histograms") Map<String, Map<String, LengthHistogram>> histograms) {

  public static final String FILE = "manifest.json";
  public static final String STAGE = "prepare";
  public static final String TRAIN = "train";
  public static final String EVAL = "eval";

  /**
   * The input fingerprint: every file with size, mtime and ETag, the format each was read as, and their hash; and
   * what the input folders held that was not read ({@code skipped_count} files, listed in {@code skipped}).
   */
  public record Input(
      @JsonProperty("files") List<InputFile> files,
      @JsonProperty("formats") Map<String, String> formats,
      @JsonProperty("fingerprint") String fingerprint,
      @JsonProperty("skipped_count") int skippedCount,
      @JsonProperty("skipped") List<SkippedFile> skipped) {}

  /**
   * @param spec the tokenizer used: {@code builtin}, a tokenizer.json or a folder holding one (loadable as it is)
   * @param setting {@code prepare.tokenizer} as configured ({@code auto} by default)
   * @param chosenBecause why this tokenizer, e.g. "auto: the tokenizer.json of model.path ..."
   */
  public record TokenizerInfo(
      @JsonProperty("spec") String spec,
      @JsonProperty("fingerprint") String fingerprint,
      @JsonProperty("vocab_size") int vocabSize,
      @JsonProperty("eos_id") int eosId,
      @JsonProperty("pad_id") int padId,
      @JsonProperty("bos_id") int bosId,
      @JsonProperty("setting") String setting,
      @JsonProperty("chosen_because") String chosenBecause) {}

  public record TemplateInfo(
      @JsonProperty("name") String name,
      @JsonProperty("fingerprint") String fingerprint) {}

  /** Always {@code read == kept + quarantined}, and {@code reasons} sums to {@code quarantined}. */
  public record Counts(
      @JsonProperty("read") long read,
      @JsonProperty("kept") long kept,
      @JsonProperty("quarantined") long quarantined,
      @JsonProperty("truncated") long truncated,
      @JsonProperty("reasons") Map<String, Long> reasons) {}

  /**
   * @param tokens prompt + chosen + rejected token ids stored
   * @param stepTokens what a DPO step processes, the prompt once with each response (2P + C + R): the quantity
   *     shards are balanced on
   */
  public record Split(
      @JsonProperty("rows") long rows,
      @JsonProperty("tokens") long tokens,
      @JsonProperty("step_tokens") long stepTokens,
      @JsonProperty("shards") List<Shard> shards) {}

  /** @param file relative to the prepared folder, e.g. {@code train/shard-00000.parquet} */
  public record Shard(
      @JsonProperty("file") String file,
      @JsonProperty("rows") long rows,
      @JsonProperty("tokens") long tokens,
      @JsonProperty("step_tokens") long stepTokens,
      @JsonProperty("bytes") long bytes,
      @JsonProperty("sha256") String sha256) {}

  public record QuarantineFile(
      @JsonProperty("file") String file,
      @JsonProperty("rows") long rows) {}

  public void write(Storage storage, String dir) {
    try (var out = OutputFiles.create(Storage.qualify(Storage.join(dir, FILE)), storage.conf())) {
      out.write(Json.MAPPER.writeValueAsBytes(this));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + Storage.join(dir, FILE) + ": " + e.getMessage(), e);
    }
  }

  /** The manifest of a prepared folder; fails clearly when the folder is not (completely) prepared. */
  public static PreparedManifest read(Storage storage, String dir) {
    String path = Storage.join(dir, FILE);
    if (!storage.exists(path)) {
      throw new IllegalArgumentException(dir + " is not a prepared folder: " + FILE + " is missing "
          + "(run spark-dpo prepare, or it did not finish)");
    }
    try {
      PreparedManifest m = Json.MAPPER.readValue(storage.readBytes(path), PreparedManifest.class);
      if (!STAGE.equals(m.stage())) {
        throw new IllegalArgumentException(path + " was written by stage '" + m.stage() + "', not prepare");
      }
      return m;
    } catch (IOException e) {
      throw new UncheckedIOException(path + " cannot be parsed: " + e.getMessage(), e);
    }
  }

  /** Absolute paths of a split's shards, in shard order. */
  public List<String> shardFiles(String dir, String split) {
    Split s = splits.get(split);
    return s == null ? List.of() : s.shards().stream().map(sh -> Storage.join(dir, sh.file())).toList();
  }
}
