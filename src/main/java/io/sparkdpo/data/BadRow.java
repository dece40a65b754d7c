package io.sparkdpo.data;

/**
 * Thrown by row parsers when a row cannot become a {@link PreferencePair}. Carries the reason, the field at fault
 * (a path such as {@code chosen[1].content}, or null for the whole row) and a human-readable detail. Has no stack
 * trace: bad rows are data, not bugs, and there may be millions of them.
 */
public final class BadRow extends Exception {
  private final QuarantineReason reason;
  private final String field;

  public BadRow(QuarantineReason reason, String field, String detail) {
    super(detail, null, false, false);
    this.reason = reason;
    this.field = field;
  }

  public QuarantineReason reason() {
    return reason;
  }

  /** The offending field's path, or null when the problem is the row as a whole. */
  public String field() {
    return field;
  }

  public String detail() {
    return getMessage();
  }

  static BadRow missing(String field) {
    return new BadRow(QuarantineReason.MISSING_FIELD, field, "field '" + field + "' is missing");
  }

  static BadRow isNull(String field) {
    return new BadRow(QuarantineReason.NULL_FIELD, field, "field '" + field + "' is null");
  }

  static BadRow wrongType(String field, String expected, String got) {
    return new BadRow(QuarantineReason.WRONG_TYPE, field,
        "field '" + field + "': expected " + expected + ", got " + got);
  }
}
