package io.sparkdpo.data;

import java.util.Arrays;

/**
 * Why an input row was not kept. The codes are stable: they appear in quarantine records and in the manifest's
 * per-reason counts, and scripts filter on them.
 */
public enum QuarantineReason {
  /** The row's bytes are not valid UTF-8. */
  INVALID_UTF8("invalid_utf8"),
  /** The row is not one well-formed JSON value (syntax error, duplicate key, trailing text). */
  MALFORMED_JSON("malformed_json"),
  /** The row is valid JSON but not an object. */
  NOT_AN_OBJECT("not_an_object"),
  /** A field the format needs is absent. */
  MISSING_FIELD("missing_field"),
  /** A field the format needs is present but null. */
  NULL_FIELD("null_field"),
  /** A field has the wrong JSON type (e.g. a number where text or a message list is expected). */
  WRONG_TYPE("wrong_type"),
  /** The prompt has no non-blank user content. */
  EMPTY_PROMPT("empty_prompt"),
  /** The chosen or rejected response is blank. */
  EMPTY_RESPONSE("empty_response"),
  /** Chosen and rejected responses are the same text: nothing to prefer. */
  IDENTICAL_RESPONSES("identical_responses"),
  /** The chosen and rejected transcripts (or the prompt field) disagree on the prompt. */
  PROMPT_MISMATCH("prompt_mismatch"),
  /** A response is missing its assistant turn (no {@code \n\nAssistant:} marker, or a non-assistant role). */
  NO_ASSISTANT_TURN("no_assistant_turn"),
  /** The chat template refused the conversation (unsupported role, raise_exception, bad output). */
  TEMPLATE_ERROR("template_error"),
  /** The same prompt, chosen and rejected already appeared earlier in the input (by file, then row). */
  DUPLICATE_PAIR("duplicate_pair"),
  /** The prompt is longer than max_prompt_length and leaves too little of max_length for a response. */
  PROMPT_TOO_LONG("prompt_too_long"),
  /** The row is larger than prepare.max_row_bytes; it was measured, never read whole ({@code raw} is its start). */
  ROW_TOO_LARGE("row_too_large");

  private final String code;

  QuarantineReason(String code) {
    this.code = code;
  }

  /** The stable snake_case code. */
  public String code() {
    return code;
  }

  public static QuarantineReason fromCode(String code) {
    return Arrays.stream(values()).filter(r -> r.code.equals(code)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("unknown quarantine reason '" + code + "'"));
  }
}
