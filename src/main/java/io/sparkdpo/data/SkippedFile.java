package io.sparkdpo.data;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * A file or folder found in an input folder and not read, with why; listed in the prepared manifest so that no row
 * disappears without a word.
 *
 * @param reason {@link #HIDDEN}, {@link #TEMPORARY}, {@link #METADATA} or {@link #UNKNOWN}
 */
public record SkippedFile(@JsonProperty("path") String path, @JsonProperty("reason") String reason) {
  /** Named {@code .x} or {@code _x} (hidden, or bookkeeping such as {@code _SUCCESS}); folders too. */
  public static final String HIDDEN = "hidden";
  /** Named {@code .tmp}, {@code .temp}, {@code .partial} or {@code ~}: something still being written. */
  public static final String TEMPORARY = "temporary";
  /** A {@code .json} file holding one JSON document (e.g. a Hugging Face dataset's {@code state.json}). */
  public static final String METADATA = "metadata";
  /** Not .jsonl, .ndjson, .json or .parquet (e.g. {@code .txt}, {@code .arrow}). */
  public static final String UNKNOWN = "unknown";
}
