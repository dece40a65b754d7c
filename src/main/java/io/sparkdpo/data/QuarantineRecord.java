package io.sparkdpo.data;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * An input row that was not kept, with everything needed to find and fix it.
 *
 * @param reason a {@link QuarantineReason} code
 * @param field the offending field's path ({@code chosen[1].content}), or null when the row as a whole is bad
 * @param raw the row's text (invalid UTF-8 bytes shown as U+FFFD)
 * @param rawBase64 the exact bytes, only when they are not valid UTF-8 (so nothing is lost)
 */
public record QuarantineRecord(String sourceFile, long sourceRow, String reason, String field, String detail,
    String raw, String rawBase64) implements RowOutcome {

  static QuarantineRecord of(RawRecord r, BadRow bad, String raw) {
    return new QuarantineRecord(r.sourceFile(), r.sourceRow(), bad.reason().code(), bad.field(), bad.detail(), raw,
        null);
  }

  static QuarantineRecord invalidUtf8(RawRecord r, byte[] bytes, int off, int len, int badAt) {
    return new QuarantineRecord(r.sourceFile(), r.sourceRow(), QuarantineReason.INVALID_UTF8.code(), null,
        String.format("invalid UTF-8 byte 0x%02X at byte %d of the row", bytes[off + badAt] & 0xff, badAt),
        new String(bytes, off, len, StandardCharsets.UTF_8),
        Base64.getEncoder().encodeToString(java.util.Arrays.copyOfRange(bytes, off, off + len)));
  }

  /** A row larger than max_row_bytes: its start as raw text, with the size in the detail. */
  static QuarantineRecord tooLarge(RawRecord r, long maxRowBytes) {
    return new QuarantineRecord(r.sourceFile(), r.sourceRow(), QuarantineReason.ROW_TOO_LARGE.code(), null,
        "the row is " + r.size() + " bytes, more than prepare.max_row_bytes (" + maxRowBytes + "); raw holds its "
            + "first " + r.bytes().length + " bytes", new String(r.bytes(), StandardCharsets.UTF_8), null);
  }

  /** The same row reclassified (e.g. as a duplicate found after parsing). */
  static QuarantineRecord of(PreparedRow row, QuarantineReason reason, String detail) {
    return new QuarantineRecord(row.sourceFile(), row.sourceRow(), reason.code(), null, detail, row.raw(), null);
  }
}
