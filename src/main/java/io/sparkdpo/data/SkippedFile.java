package io.sparkdpo.data;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * A file or folder found in an input folder and not read, with why; listed in the prepared manifest so that no row
 * disappears without a word.
 *
 * @param reason {@link #HIDDEN}, {@link #TEMPORARY}, {@link #METADATA}, {@link #UNKNOWN} or {@link #OTHER_SPLIT}
 */
public record SkippedFile(@JsonProperty("path") String path, @JsonProperty("reason") String reason) {
  /** Named {@code .x} or {@code _x} (hidden, or bookkeeping such as {@code _SUCCESS}); folders too. */
  public static final String HIDDEN = "hidden";
  /** Named {@code .tmp}, {@code .temp}, {@code .partial} or {@code ~}: something still being written. */
  public static final String TEMPORARY = "temporary";
  /**
   * A {@code .json} file holding one JSON document, or a Hugging Face dataset's bookkeeping ({@code state.json},
   * {@code dataset_info.json}, {@code dataset_dict.json}).
   */
  public static final String METADATA = "metadata";
  /** Not .jsonl, .ndjson, .json, .parquet or .arrow (e.g. {@code .txt}, a dataset card {@code README.md}). */
  public static final String UNKNOWN = "unknown";
  /** Data of a Hugging Face dataset split other than prepare.dataset_split (e.g. {@code test/} of a DatasetDict). */
  public static final String OTHER_SPLIT = "other_split";
}
