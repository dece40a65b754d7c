package io.sparkdpo.inference;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * {@code DIR/manifest.json} of a {@code generate} output: which model sampled (fingerprint), from which prompt text,
 * with which settings and reward, what came out (counts of prompts, samples, pairs and of prompts dropped for want of
 * a preference) and the fingerprint that makes a rerun with the same inputs a no-op. Written last.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record GenerateManifest(
    @JsonProperty("stage") String stage,
    @JsonProperty("version") int version,
    @JsonProperty("created_at") String createdAt,
    @JsonProperty("fingerprint") String fingerprint,
    @JsonProperty("model") Model model,
    @JsonProperty("tokenizer_fingerprint") String tokenizerFingerprint,
    @JsonProperty("reward") Reward reward,
    @JsonProperty("prompt_sources") List<String> promptSources,
    @JsonProperty("eval_prompt_sources") List<String> evalPromptSources,
    @JsonProperty("counts") Counts counts,
    @JsonProperty("files") Files files,
    @JsonProperty("executors") Executors executors,
    @JsonProperty("seconds") double seconds,
    @JsonProperty("config") JsonNode config) {

  public static final String FILE = "manifest.json";
  public static final String STAGE = "generate";

  public record Model(@JsonProperty("path") String path, @JsonProperty("fingerprint") String fingerprint) {}

  public record Reward(@JsonProperty("spec") String spec, @JsonProperty("name") String name) {}

  /**
   * @param prompts training prompts sampled for
   * @param samples continuations sampled (prompts x samples per prompt)
   * @param pairs preference pairs written
   * @param droppedTies prompts whose continuations all scored the same
   * @param droppedIdenticalTexts prompts whose best and worst continuations are the same text
   * @param droppedEmpty prompts with fewer than two non-empty continuations (an empty one cannot be a response)
   * @param emptyContinuations continuations that decoded to blank text
   * @param stopped continuations that ended with EOS rather than at max_new_tokens
   * @param sampledTokens tokens sampled, EOS included
   * @param evalPrompts held-out prompts written for evaluation
   */
  public record Counts(
      @JsonProperty("prompts") long prompts,
      @JsonProperty("samples") long samples,
      @JsonProperty("pairs") long pairs,
      @JsonProperty("dropped_ties") long droppedTies,
      @JsonProperty("dropped_identical_texts") long droppedIdenticalTexts,
      @JsonProperty("dropped_empty") long droppedEmpty,
      @JsonProperty("empty_continuations") long emptyContinuations,
      @JsonProperty("stopped") long stopped,
      @JsonProperty("sampled_tokens") long sampledTokens,
      @JsonProperty("eval_prompts") long evalPrompts) {}

  /** Relative to the output folder; null when not written. */
  public record Files(
      @JsonProperty("pairs") String pairs,
      @JsonProperty("prompts") String prompts,
      @JsonProperty("eval_prompts") String evalPrompts,
      @JsonProperty("samples") String samples) {

    List<String> present() {
      return java.util.stream.Stream.of(pairs, prompts, evalPrompts, samples).filter(java.util.Objects::nonNull)
          .toList();
    }
  }

  public record Executors(
      @JsonProperty("tasks") long tasks,
      @JsonProperty("model_loads") long modelLoads,
      @JsonProperty("jvms") int jvms) {}

  public void write(Storage storage, String dir) {
    storage.writeJson(Storage.join(dir, FILE), this);
  }

  public static GenerateManifest read(Storage storage, String dir) {
    String path = Storage.join(dir, FILE);
    if (!storage.exists(path)) {
      throw new IllegalArgumentException(dir + " holds no generate output: " + FILE + " is missing");
    }
    try {
      GenerateManifest m = Json.MAPPER.readValue(storage.readBytes(path), GenerateManifest.class);
      if (!STAGE.equals(m.stage())) {
        throw new IllegalArgumentException(path + " was written by stage '" + m.stage() + "', not generate");
      }
      return m;
    } catch (IOException e) {
      throw new UncheckedIOException(path + " cannot be parsed: " + e.getMessage(), e);
    }
  }
}
