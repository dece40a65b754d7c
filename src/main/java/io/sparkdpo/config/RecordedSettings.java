package io.sparkdpo.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * The settings a stage's output depends on, as its manifest records them: an allowlist of key paths, never the whole
 * configuration. {@code spark} (the master and the free-form Spark conf, where users put Hadoop and cloud keys) and
 * {@code storage} (where files live and the credentials to reach them) change how a stage runs, not what it writes:
 * they are never recorded, and {@link #of} refuses a path under them. What is recorded still passes through
 * {@link Redaction}.
 */
public final class RecordedSettings {
  /** prepare's output: every {@code prepare} key, and {@code model.path}, whose tokenizer {@code auto} picks. */
  public static final List<String> PREPARE = List.of("prepare", "model.path");

  /** Sections whose keys may be recorded; anything else (spark, storage) may not. */
  private static final List<String> RECORDABLE = List.of("prepare", "model", "sft", "train", "reference", "generate",
      "evaluate", "pipeline", "reward", "score");

  private RecordedSettings() {}

  /**
   * The allowlisted {@code paths} of {@code config} (dotted: a section, or one key such as {@code model.path}),
   * nested as in the YAML: {@code of(cfg, PREPARE)} is {@code {"prepare": {...}, "model": {"path": ...}}}.
   */
  public static ObjectNode of(JobConfig config, List<String> paths) {
    return pick(ConfigLoader.toRedactedTree(config), paths, true);
  }

  /** One recordable section (e.g. {@code generate}) or key, redacted: for a fingerprint or a manifest field. */
  public static JsonNode section(JobConfig config, String path) {
    requireRecordable(path);
    JsonNode node = at(ConfigLoader.toRedactedTree(config), path);
    if (node.isMissingNode()) {
      throw new IllegalArgumentException("no setting " + path);
    }
    return node.deepCopy();
  }

  /**
   * What a manifest written earlier recorded, cut down to {@code paths} (older versions recorded the whole
   * configuration, Spark conf included); paths it lacks are left out. Null for null.
   */
  public static ObjectNode filter(JsonNode recorded, List<String> paths) {
    if (recorded == null || recorded.isNull() || recorded.isMissingNode()) {
      return null;
    }
    return (ObjectNode) Redaction.redactTree(pick(recorded, paths, false), List.of());
  }

  private static ObjectNode pick(JsonNode tree, List<String> paths, boolean required) {
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    for (String path : paths) {
      requireRecordable(path);
      JsonNode value = at(tree, path);
      if (value.isMissingNode()) {
        if (required) {
          throw new IllegalArgumentException("no setting " + path + " to record");
        }
        continue;
      }
      String[] parts = path.split("\\.");
      ObjectNode parent = out;
      for (int i = 0; i < parts.length - 1; i++) {
        parent = parent.has(parts[i]) ? (ObjectNode) parent.get(parts[i]) : parent.putObject(parts[i]);
      }
      parent.set(parts[parts.length - 1], value.deepCopy());
    }
    return out;
  }

  private static void requireRecordable(String path) {
    String section = path.contains(".") ? path.substring(0, path.indexOf('.')) : path;
    if (!RECORDABLE.contains(section)) {
      throw new IllegalArgumentException(path + " is not an output-affecting setting and is never recorded "
          + "(recordable sections: " + String.join(", ", RECORDABLE) + ")");
    }
  }

  private static JsonNode at(JsonNode tree, String path) {
    JsonNode node = tree;
    for (String part : path.split("\\.")) {
      node = node.path(part);
    }
    return node;
  }
}
