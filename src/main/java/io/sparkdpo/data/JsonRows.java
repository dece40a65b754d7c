package io.sparkdpo.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;

/** Parses one row's bytes as a JSON object, strictly: duplicate keys and trailing text are errors. */
final class JsonRows {
  private static final ObjectMapper STRICT = JsonMapper.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
      .build();

  private JsonRows() {}

  /** The row as a JSON object; the bytes must already be valid UTF-8. */
  static JsonNode parseObject(byte[] bytes, int off, int len) throws BadRow {
    JsonNode node;
    try {
      node = STRICT.readTree(bytes, off, len);
    } catch (JsonProcessingException e) {
      String where = e.getLocation() == null ? "" : " at character " + e.getLocation().getColumnNr();
      throw new BadRow(QuarantineReason.MALFORMED_JSON, null, "not valid JSON: " + e.getOriginalMessage() + where);
    } catch (IOException e) {
      throw new BadRow(QuarantineReason.MALFORMED_JSON, null, "not valid JSON: " + e.getMessage());
    }
    if (node == null || node.isMissingNode()) {
      throw new BadRow(QuarantineReason.MALFORMED_JSON, null, "not valid JSON: no value");
    }
    if (!node.isObject()) {
      throw new BadRow(QuarantineReason.NOT_AN_OBJECT, null,
          "the row is " + RowFields.describe(node) + ", not a JSON object");
    }
    return node;
  }
}
