package io.sparkdpo.data;

import java.io.Serializable;

/**
 * One input row as read, before any parsing: where it came from and its raw bytes (a JSONL line, one element of
 * a JSON array, or a Parquet, Arrow or table row rendered as JSON).
 *
 * @param sourceFile the file's full path as Hadoop lists it (e.g. {@code file:/data/x.jsonl}, {@code s3a://b/k}), or
 *     {@code table:} and a table's qualified name
 * @param sourceRow 1-based line number (JSONL), element number (JSON array), row number (Parquet, Arrow), or a
 *     table row's rank by the SHA-256 of its JSON ({@link InputTables})
 * @param bytes the row, or for a row larger than prepare.max_row_bytes only its first {@link #PREVIEW_BYTES}
 * @param size the row's length in bytes
 */
public record RawRecord(String sourceFile, long sourceRow, byte[] bytes, long size) implements Serializable {
  /** How much of a too-large row is kept, to show in the quarantine. */
  static final int PREVIEW_BYTES = 1024;

  public RawRecord(String sourceFile, long sourceRow, byte[] bytes) {
    this(sourceFile, sourceRow, bytes, bytes.length);
  }

  /** A row that was measured but not kept: {@code start} is at least its first {@link #PREVIEW_BYTES}. */
  static RawRecord tooLarge(String sourceFile, long sourceRow, byte[] start, int startLength, long size) {
    return new RawRecord(sourceFile, sourceRow,
        java.util.Arrays.copyOf(start, Math.min(startLength, PREVIEW_BYTES)), size);
  }

  boolean isWhole() {
    return size == bytes.length;
  }
}
