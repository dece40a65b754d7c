package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.apache.commons.text.similarity.LevenshteinDistance;

/**
 * Builds a {@link JobConfig}: built-in defaults, then the job's YAML file, then {@code --set a.b=c} overrides,
 * then binding to records, then range checks. Every failure names the key and what is allowed, and happens
 * before any Spark work starts.
 */
public final class ConfigLoader {
  private static final String DEFAULTS = "/io/sparkdpo/config/defaults.yaml";

  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
      .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
      .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES))
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
      .enable(DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS)
      .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT);

  private ConfigLoader() {}

  /** Defaults only. */
  public static JobConfig defaults() {
    return load(null, List.of());
  }

  /**
   * @param file a YAML file or null
   * @param overrides {@code key.path=value} strings; values are parsed as YAML scalars (numbers, booleans, null)
   */
  public static JobConfig load(Path file, List<String> overrides) {
    ObjectNode tree = defaultsTree();
    if (file != null) {
      JsonNode user = readFile(file);
      if (!user.isMissingNode() && !user.isNull()) {
        if (!user.isObject()) {
          throw new ConfigException(file + ": the top level must be a mapping of sections, e.g. 'prepare:'");
        }
        mergeInto(tree, (ObjectNode) user, "", file.toString());
      }
    }
    for (String override : overrides) {
      applyOverride(tree, override);
    }
    switchOffOptionalSections(tree);
    JobConfig config = bind(tree);
    Violations v = new Violations();
    config.validate("", v);
    v.throwIfAny();
    return config;
  }

  /** The effective configuration as YAML, with every secret-looking value replaced. Safe to log. */
  public static String toRedactedYaml(JobConfig config) {
    try {
      return YAML.writeValueAsString(redact(showOptionalSections(YAML.valueToTree(config))));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The effective configuration as a JSON tree with secrets redacted, for manifests. */
  public static JsonNode toRedactedTree(JobConfig config) {
    return redact(showOptionalSections(YAML.valueToTree(config)));
  }

  /**
   * Sections that are off unless turned on: defaults.yaml lists each with every key and {@code type: none}, so
   * {@code --set train.peft.type=lora} (or a file) switches one on with the other keys' defaults, and a misspelt key
   * is named as anywhere else. An off section binds as null (its record's "not configured") and prints as its
   * defaults.
   */
  static final List<String> OPTIONAL_SECTIONS = List.of("sft.peft", "train.peft", "pipeline.peft", "reward.peft",
      "ppo.peft");
  private static final String OFF = "none";

  private static void switchOffOptionalSections(ObjectNode tree) {
    ObjectNode defaults = defaultsTree();
    for (String path : OPTIONAL_SECTIONS) {
      int dot = path.lastIndexOf('.');
      JsonNode parent = valueAt(tree, path.substring(0, dot));
      String key = path.substring(dot + 1);
      if (parent instanceof ObjectNode p && p.get(key) instanceof ObjectNode section
          && OFF.equals(section.path("type").asText(null))) {
        // A key set in a section that stays off would be ignored without a word: refuse it instead.
        JsonNode byDefault = valueAt(defaults, path);
        Iterator<String> names = section.fieldNames();
        while (names.hasNext()) {
          String name = names.next();
          if (!section.get(name).equals(byDefault.get(name))) {
            throw new ConfigException(path + "." + name + " is set, but " + path + ".type is none (off): set "
                + path + ".type=lora to use it");
          }
        }
        p.set(key, NullNode.instance);
      }
    }
  }

  private static JsonNode showOptionalSections(JsonNode tree) {
    ObjectNode defaults = defaultsTree();
    for (String path : OPTIONAL_SECTIONS) {
      int dot = path.lastIndexOf('.');
      JsonNode parent = valueAt(tree, path.substring(0, dot));
      String key = path.substring(dot + 1);
      if (parent instanceof ObjectNode p && p.path(key).isNull()) {
        p.set(key, valueAt(defaults, path));
      }
    }
    return tree;
  }

  /** Whether a key (in any spelling: snake_case, dotted Hadoop names) holds a secret: {@link Redaction}'s rule. */
  public static boolean isSecretKey(String key) {
    return Redaction.isCredentialKey(key);
  }

  /** Credential-like keys hidden everywhere; in the free-form Spark conf also values that mention one. */
  private static JsonNode redact(JsonNode node) {
    return Redaction.redactTree(node, FREE_FORM_MAPS);
  }

  /** An override as it may appear in an error message: the value hidden when the key names a credential. */
  private static String shown(String override) {
    int eq = override.indexOf('=');
    return eq > 0 && (Redaction.isCredentialKey(override.substring(0, eq))
        || Redaction.mentionsCredential(override.substring(eq + 1)))
        ? override.substring(0, eq + 1) + Redaction.REDACTED : override;
  }

  private static ObjectNode defaultsTree() {
    try (InputStream in = ConfigLoader.class.getResourceAsStream(DEFAULTS)) {
      if (in == null) {
        throw new IllegalStateException("missing resource " + DEFAULTS);
      }
      return (ObjectNode) YAML.readTree(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static JsonNode readFile(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new ConfigException("config file " + file + " does not exist or is not a file");
    }
    try {
      return YAML.readTree(file.toFile());
    } catch (JsonProcessingException e) {
      throw new ConfigException(file + ": not valid YAML: " + e.getOriginalMessage()
          + (e.getLocation() != null ? " at line " + e.getLocation().getLineNr() : ""));
    } catch (IOException e) {
      throw new ConfigException(file + ": cannot be read: " + e.getMessage());
    }
  }

  /** Maps whose keys are the user's own (Spark's settings), not ours: any key is accepted. */
  private static final List<String> FREE_FORM_MAPS = List.of("spark.conf");

  private static boolean freeForm(String dottedKey) {
    return FREE_FORM_MAPS.contains(dottedKey);
  }

  private static void mergeInto(ObjectNode base, ObjectNode user, String prefix, String source) {
    Iterator<Map.Entry<String, JsonNode>> it = user.fields();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      String key = prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey();
      JsonNode existing = base.get(e.getKey());
      if (existing == null) {
        throw unknownKey(base, e.getKey(), prefix, source);
      }
      JsonNode value = e.getValue();
      if (existing.isObject() && !freeForm(key)) {
        if (value.isNull()) {
          continue;
        }
        if (!value.isObject()) {
          throw new ConfigException(key + " (" + source + "): must be a mapping with keys "
              + keysOf(existing) + ", got " + describe(value));
        }
        mergeInto((ObjectNode) existing, (ObjectNode) value, key, source);
      } else if (existing.isObject() && value.isObject()) {
        ((ObjectNode) existing).setAll((ObjectNode) value);
      } else {
        base.set(e.getKey(), value);
      }
    }
  }

  private static void applyOverride(ObjectNode tree, String override) {
    int eq = override.indexOf('=');
    if (eq <= 0) {
      throw new ConfigException("--set " + shown(override) + ": expected key.path=value");
    }
    String path = override.substring(0, eq).trim();
    String raw = override.substring(eq + 1);
    JsonNode value;
    try {
      value = raw.isEmpty() ? JsonNodeFactory.instance.textNode("") : YAML.readTree(raw);
      if (value == null || value.isMissingNode()) {
        value = NullNode.instance;
      }
    } catch (JsonProcessingException e) {
      value = JsonNodeFactory.instance.textNode(raw);
    }
    String[] parts = path.split("\\.");
    ObjectNode node = tree;
    StringBuilder prefix = new StringBuilder();
    for (int i = 0; i < parts.length - 1; i++) {
      JsonNode child = node.get(parts[i]);
      if (child == null) {
        throw unknownKey(node, parts[i], prefix.toString(), "--set " + shown(override));
      }
      if (freeForm(prefix + parts[i])) {
        // Free-form maps (spark.conf) take the rest of the path as one key: spark.conf.spark.x.y=1.
        String rest = String.join(".", Arrays.copyOfRange(parts, i + 1, parts.length));
        ((ObjectNode) child).set(rest, value.isValueNode() ? JsonNodeFactory.instance.textNode(value.asText()) : value);
        return;
      }
      if (!child.isObject()) {
        throw new ConfigException("--set " + shown(override) + ": " + prefix + parts[i] + " is a value, not a section");
      }
      node = (ObjectNode) child;
      prefix.append(parts[i]).append('.');
    }
    String last = parts[parts.length - 1];
    JsonNode existing = node.get(last);
    if (existing == null) {
      throw unknownKey(node, last, prefix.length() == 0 ? "" : prefix.substring(0, prefix.length() - 1),
          "--set " + shown(override));
    }
    if (existing.isObject() && !freeForm(path) && !value.isNull()) {
      throw new ConfigException("--set " + shown(override) + ": " + path + " is a section with keys " + keysOf(existing)
          + "; set one of them, e.g. " + path + "." + existing.fieldNames().next() + "=...");
    }
    node.set(last, value);
  }

  /** A key within two edits of an unknown one is offered as "did you mean"; apply gives -1 beyond that. */
  private static final LevenshteinDistance TYPO = new LevenshteinDistance(2);

  private static ConfigException unknownKey(JsonNode section, String key, String prefix, String source) {
    String full = prefix.isEmpty() ? key : prefix + "." + key;
    TreeSet<String> allowed = keysOf(section);
    String hint = allowed.stream().filter(k -> TYPO.apply(k, key) >= 0).findFirst()
        .map(k -> " (did you mean '" + k + "'?)").orElse("");
    return new ConfigException("unknown key '" + full + "' in " + source + hint + "; allowed keys"
        + (prefix.isEmpty() ? "" : " under '" + prefix + "'") + ": " + String.join(", ", allowed));
  }

  private static TreeSet<String> keysOf(JsonNode section) {
    TreeSet<String> keys = new TreeSet<>();
    section.fieldNames().forEachRemaining(keys::add);
    return keys;
  }

  private static JobConfig bind(ObjectNode tree) {
    try {
      return YAML.treeToValue(tree, JobConfig.class);
    } catch (InvalidFormatException e) {
      String key = pathOf(e);
      Class<?> target = e.getTargetType();
      if (target != null && target.isEnum()) {
        throw new ConfigException(key + ": '" + e.getValue() + "' is not allowed; allowed values: "
            + enumValues(target));
      }
      throw new ConfigException(key + ": '" + Redaction.value(key, String.valueOf(e.getValue())) + "' is not a valid "
          + typeName(target));
    } catch (MismatchedInputException e) {
      String key = pathOf(e);
      Class<?> target = e.getTargetType();
      JsonNode given = valueAt(tree, key);
      if (target != null && target.isEnum()) {
        throw new ConfigException(key + ": " + describe(given) + " is not allowed; allowed values: "
            + enumValues(target));
      }
      throw new ConfigException(key + ": expected " + typeName(target) + ", got "
          + (Redaction.isCredentialKey(key) && given.isValueNode() ? Redaction.REDACTED : describe(given)));
    } catch (ValueInstantiationException e) {
      // A value type's own check (its @JsonCreator) refused the value; its message says what is allowed.
      throw new ConfigException(pathOf(e) + ": " + (e.getCause() != null ? e.getCause().getMessage()
          : e.getOriginalMessage()));
    } catch (JsonProcessingException e) {
      throw new ConfigException("configuration cannot be bound: " + e.getOriginalMessage());
    }
  }

  private static JsonNode valueAt(JsonNode tree, String dotted) {
    JsonNode node = tree;
    for (String part : dotted.split("\\.")) {
      node = node == null ? MissingNode.getInstance() : node.path(part);
    }
    return node;
  }

  private static String pathOf(JsonMappingException e) {
    // train.loss_type[1], not train.loss_type.[1]
    return e.getPath().stream()
        .map(ref -> ref.getFieldName() != null ? "." + ref.getFieldName() : "[" + ref.getIndex() + "]")
        .collect(Collectors.joining()).replaceFirst("^\\.", "");
  }

  private static String describe(JsonNode value) {
    if (value == null || value.isMissingNode() || value.isNull()) {
      return "null";
    }
    if (value.isObject()) {
      return "a mapping";
    }
    if (value.isArray()) {
      return "a list";
    }
    return (value.isTextual() ? "text" : value.getNodeType().name().toLowerCase()) + " '" + value.asText() + "'";
  }

  private static String typeName(Class<?> type) {
    if (type == null) {
      return "value";
    }
    if (type == int.class || type == Integer.class || type == long.class || type == Long.class) {
      return "a whole number";
    }
    if (type == double.class || type == Double.class || type == float.class || type == Float.class) {
      return "a number";
    }
    if (type == boolean.class || type == Boolean.class) {
      return "true or false";
    }
    if (type == String.class) {
      return "text";
    }
    if (Map.class.isAssignableFrom(type) || type.isRecord()) {
      return "a mapping";
    }
    if (List.class.isAssignableFrom(type)) {
      return "a list";
    }
    return type.getSimpleName();
  }

  /** The names an enum accepts in YAML: its {@code @JsonProperty} values. */
  public static List<String> enumValues(Class<?> enumType) {
    List<String> names = new ArrayList<>();
    for (Object constant : enumType.getEnumConstants()) {
      String name = ((Enum<?>) constant).name();
      try {
        JsonProperty p = enumType.getField(name).getAnnotation(JsonProperty.class);
        names.add(p != null ? p.value() : name.toLowerCase());
      } catch (NoSuchFieldException e) {
        names.add(name.toLowerCase());
      }
    }
    return names;
  }

  /** The YAML name of an enum constant. */
  public static String yamlName(Enum<?> constant) {
    try {
      JsonProperty p = constant.getDeclaringClass().getField(constant.name()).getAnnotation(JsonProperty.class);
      return p != null ? p.value() : constant.name().toLowerCase();
    } catch (NoSuchFieldException e) {
      return constant.name().toLowerCase();
    }
  }
}
