package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/** Typed access to a row's JSON fields; every failure is a {@link BadRow} naming the field's path. */
final class RowFields {
  private RowFields() {}

  /** A present, non-null field. */
  static JsonNode required(JsonNode row, String name) throws BadRow {
    JsonNode v = row.get(name);
    if (v == null) {
      throw BadRow.missing(name);
    }
    if (v.isNull()) {
      throw BadRow.isNull(name);
    }
    return v;
  }

  static String text(JsonNode row, String name) throws BadRow {
    return asText(required(row, name), name);
  }

  static String asText(JsonNode v, String path) throws BadRow {
    if (v.isNull()) {
      throw BadRow.isNull(path);
    }
    if (!v.isTextual()) {
      throw BadRow.wrongType(path, "a string", describe(v));
    }
    return v.textValue();
  }

  static double number(JsonNode row, String name) throws BadRow {
    JsonNode v = required(row, name);
    if (!v.isNumber()) {
      throw BadRow.wrongType(name, "a number", describe(v));
    }
    return v.doubleValue();
  }

  /** A list of {@code {role, content}} messages. Content may be text or a list of {@code {type: text, text}} parts. */
  static List<Turn> messages(JsonNode v, String path) throws BadRow {
    if (!v.isArray()) {
      throw BadRow.wrongType(path, "a list of {role, content} messages", describe(v));
    }
    List<Turn> turns = new ArrayList<>(v.size());
    for (int i = 0; i < v.size(); i++) {
      String at = path + "[" + i + "]";
      JsonNode m = v.get(i);
      if (m.isNull()) {
        throw BadRow.isNull(at);
      }
      if (!m.isObject()) {
        throw BadRow.wrongType(at, "a {role, content} message", describe(m));
      }
      String role = text(m, "role", at);
      if (role.isBlank()) {
        throw BadRow.wrongType(at + ".role", "a role name", "a blank string");
      }
      turns.add(new Turn(role, content(m, at)));
    }
    return turns;
  }

  private static String text(JsonNode obj, String name, String at) throws BadRow {
    JsonNode v = obj.get(name);
    if (v == null) {
      throw BadRow.missing(at + "." + name);
    }
    return asText(v, at + "." + name);
  }

  private static String content(JsonNode message, String at) throws BadRow {
    String path = at + ".content";
    JsonNode v = message.get("content");
    if (v == null) {
      throw BadRow.missing(path);
    }
    if (!v.isArray()) {
      return asText(v, path);
    }
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < v.size(); i++) {
      JsonNode part = v.get(i);
      String partPath = path + "[" + i + "]";
      if (!part.isObject() || !"text".equals(part.path("type").asText(null))) {
        throw BadRow.wrongType(partPath, "a {type: text, text} part", describe(part));
      }
      JsonNode text = part.get("text");
      if (text == null) {
        throw BadRow.missing(partPath + ".text");
      }
      sb.append(asText(text, partPath + ".text"));
    }
    return sb.toString();
  }

  static String describe(JsonNode v) {
    if (v == null || v.isMissingNode()) {
      return "nothing";
    }
    return switch (v.getNodeType()) {
      case STRING -> "a string";
      case NUMBER -> "a number (" + v.asText() + ")";
      case BOOLEAN -> "a boolean (" + v.asText() + ")";
      case ARRAY -> "a list";
      case OBJECT -> "an object";
      case NULL -> "null";
      default -> v.getNodeType().name().toLowerCase();
    };
  }
}
