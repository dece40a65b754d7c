package io.sparkdpo.data;

import java.io.Serializable;

/**
 * One input row as read, before any parsing: where it came from and its raw bytes (a JSONL line, one element of
 * a JSON array, or a Parquet row rendered as JSON).
 *
 * @param sourceFile the file's full path as Hadoop lists it (e.g. {@code file:/data/x.jsonl}, {@code s3a://b/k})
 * @param sourceRow 1-based line number (JSONL), element number (JSON array) or row number (Parquet)
 */
public record RawRecord(String sourceFile, long sourceRow, byte[] bytes) implements Serializable {}
