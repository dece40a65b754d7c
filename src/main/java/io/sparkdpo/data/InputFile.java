package io.sparkdpo.data;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.io.Serializable;

/**
 * One input (a file, or a catalog table) and what identifies its content: for a file its size, modification time
 * and, on object stores, the ETag, without reading it; for a table its row count and a digest of its rows, which
 * prepare computes with one pass over the table (a catalog gives no change marker common to Hive, Delta and Iceberg).
 *
 * @param path the full path as Hadoop lists it ({@code file:/...}, {@code s3a://bucket/key}), or for a table
 *     {@code table:} and its qualified name ({@code table:spark_catalog.default.pairs})
 * @param layout {@code jsonl}, {@code json_array}, {@code parquet}, {@code arrow_stream} or {@code table}
 * @param size bytes (0 for a table)
 * @param rows a table's row count; null for files
 * @param digest a table's row digest ({@link InputTables}); null for files
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record InputFile(
    @JsonProperty("path") String path,
    @JsonProperty("layout") String layout,
    @JsonProperty("size") long size,
    @JsonProperty("modified") long modified,
    @JsonProperty("etag") String etag,
    @JsonProperty("rows") Long rows,
    @JsonProperty("digest") String digest) implements Serializable {
  public static final String JSONL = "jsonl";
  public static final String JSON_ARRAY = "json_array";
  public static final String PARQUET = "parquet";
  /** Arrow IPC stream files, as Hugging Face {@code datasets} writes them ({@code data-00000-of-00001.arrow}). */
  public static final String ARROW_STREAM = "arrow_stream";
  public static final String TABLE = "table";

  /** A file. */
  public InputFile(String path, String layout, long size, long modified, String etag) {
    this(path, layout, size, modified, etag, null, null);
  }

  /** The {@code table:NAME} text of a table input, or null when {@code input} names a path. */
  static String tableName(String input) {
    String s = input.strip();
    return s.regionMatches(true, 0, io.sparkdpo.config.PrepareSettings.TABLE_PREFIX, 0, 6) ? s.substring(6).strip()
        : null;
  }
}
