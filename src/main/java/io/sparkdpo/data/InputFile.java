package io.sparkdpo.data;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.io.Serializable;

/**
 * One input file and what identifies its content without reading it: size, modification time and, on object
 * stores, the ETag.
 *
 * @param path the full path as Hadoop lists it ({@code file:/...}, {@code s3a://bucket/key})
 * @param layout {@code jsonl}, {@code json_array} or {@code parquet}
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record InputFile(
    @JsonProperty("path") String path,
    @JsonProperty("layout") String layout,
    @JsonProperty("size") long size,
    @JsonProperty("modified") long modified,
    @JsonProperty("etag") String etag) implements Serializable {
  public static final String JSONL = "jsonl";
  public static final String JSON_ARRAY = "json_array";
  public static final String PARQUET = "parquet";
}
