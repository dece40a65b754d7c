package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/** Settings of the {@code prepare} stage: parsing, templating, tokenization, truncation, split and sharding. */
public record PrepareSettings(
    Format format,
    String tokenizer,
    String template,
    int maxLength,
    int maxPromptLength,
    TruncationMode truncationMode,
    boolean addEos,
    double evalFraction,
    int numShards,
    long seed,
    LongPrompt longPrompt,
    double templateTimeoutS,
    long templateMaxChars,
    long maxRowBytes,
    double maxQuarantineFraction,
    List<String> input,
    String datasetSplit) implements Validated {
  /** The prefix of an input that names a catalog table rather than a path. */
  public static final String TABLE_PREFIX = "table:";

  public PrepareSettings {
    input = input == null ? List.of() : List.copyOf(input);
  }

  /** Input dataset layouts. */
  public enum Format {
    @JsonProperty("auto") AUTO,
    @JsonProperty("hh-rlhf") HH_RLHF,
    @JsonProperty("trl") TRL,
    @JsonProperty("ultrafeedback") ULTRAFEEDBACK
  }

  /** Which end of an over-long prompt survives, as TRL's {@code truncation_mode}. */
  public enum TruncationMode {
    @JsonProperty("keep_start") KEEP_START,
    @JsonProperty("keep_end") KEEP_END
  }

  /** What to do with a prompt longer than max_prompt_length when the pair does not fit max_length. */
  public enum LongPrompt {
    @JsonProperty("truncate") TRUNCATE,
    @JsonProperty("quarantine") QUARANTINE
  }

  @Override
  public void validate(String prefix, Violations v) {
    v.notBlank(prefix + ".tokenizer", tokenizer);
    v.notBlank(prefix + ".template", template);
    v.positive(prefix + ".max_length", maxLength);
    v.positive(prefix + ".max_prompt_length", maxPromptLength);
    v.require(maxPromptLength < maxLength, prefix + ".max_prompt_length",
        "must be < max_length (" + maxLength + ") to leave room for a response", maxPromptLength);
    v.inRange(prefix + ".eval_fraction", evalFraction, 0.0, 1.0);
    v.nonNegative(prefix + ".num_shards", numShards);
    v.positive(prefix + ".template_timeout_s", templateTimeoutS);
    v.positive(prefix + ".template_max_chars", templateMaxChars);
    v.require(templateMaxChars <= Integer.MAX_VALUE - 16, prefix + ".template_max_chars", "must be < 2^31 (a Java "
        + "string's length)", templateMaxChars);
    v.positive(prefix + ".max_row_bytes", maxRowBytes);
    v.require(maxRowBytes <= Integer.MAX_VALUE - 16, prefix + ".max_row_bytes", "must be < 2^31 (a Java array's "
        + "length)", maxRowBytes);
    v.inClosedRange(prefix + ".max_quarantine_fraction", maxQuarantineFraction, 0.0, 1.0);
    for (String in : input) {
      v.require(in != null && !in.isBlank() && !in.strip().equals(TABLE_PREFIX), prefix + ".input",
          "every entry must be a path or table:NAME", in);
    }
    v.notBlank(prefix + ".dataset_split", datasetSplit);
  }
}
