package io.sparkdpo.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Which settings hold credentials, and how their values are hidden. One rule serves our own YAML keys
 * ({@code storage.s3.secret_key}), Spark and Hadoop property names ({@code fs.s3a.encryption.key},
 * {@code fs.azure.account.key.ACCOUNT.dfs.core.windows.net}), logs, manifests, {@code spark-dpo config} and Spark
 * itself: {@link #SPARK_REGEX} is what we set as {@code spark.redaction.regex}, so the UI's environment page and the
 * event log hide the same keys. Spark's default ({@code secret|password|token|access[.]?key}) misses encryption and
 * account keys.
 *
 * <p>A key is credential-like when, ignoring case, it contains {@code secret}, {@code password}/{@code passwd},
 * {@code passphrase}, {@code credential}, {@code oauth}, {@code signature} or {@code keyfile}; or has {@code token} or
 * {@code key} as a word of its own ({@code *.key}, {@code *_key}, {@code *.key.*}, {@code session_token}, camelCase
 * {@code accountKey}, {@code sessionToken}), but not {@code tokenizer}, {@code batch_tokens} or {@code keySizeBits}.
 */
public final class Redaction {
  /** What a hidden value is replaced by. */
  public static final String REDACTED = "***redacted***";

  /** A Java regular expression, searched anywhere in a key (as Spark does); also our {@code spark.redaction.regex}. */
  public static final String SPARK_REGEX = "(?i)secret|passw(?:or)?d|passphrase|credential|oauth|signature|keyfile"
      + "|(?<![a-z])token(?![a-z])|(?<![a-z0-9])key(?![a-z])"
      + "|(?:access|account|encryption|private|secret|client|api|sse|signing|master|shared|storage)[._-]?key(?![a-z])"
      + "|(?-i:[a-z0-9](?:Token|Key)(?![a-z]))";

  /** The Spark property that tells Spark which keys (and values) to hide in its UI, logs and event log. */
  public static final String SPARK_REDACTION_KEY = "spark.redaction.regex";

  private static final Pattern CREDENTIAL = Pattern.compile(SPARK_REGEX);

  private Redaction() {}

  /** Whether a key (in any spelling: snake_case, dotted Hadoop names, camelCase) names a credential. */
  public static boolean isCredentialKey(String key) {
    return key != null && CREDENTIAL.matcher(key).find();
  }

  /**
   * Whether a free-form value mentions a credential-like key, e.g. {@code -Dfs.azure.account.key.x=...} inside
   * {@code spark.driver.extraJavaOptions}: Spark hides such values too, and so do we for the free-form Spark conf.
   */
  public static boolean mentionsCredential(String value) {
    return value != null && CREDENTIAL.matcher(value).find();
  }

  /** {@code value}, or {@link #REDACTED} when it is set and {@code key} names a credential. */
  public static String value(String key, String value) {
    return value != null && isCredentialKey(key) ? REDACTED : value;
  }

  /** {@link #REDACTED} for a set value, null for an unset one: for records whose field is a credential. */
  public static String hidden(String credential) {
    return credential == null ? null : REDACTED;
  }

  /**
   * A map of free-form settings (Spark's own) as it may be shown: values of credential-like keys, and values that
   * mention one, hidden; sorted by key.
   */
  public static Map<String, String> freeForm(Map<String, String> settings) {
    Map<String, String> shown = new TreeMap<>();
    settings.forEach((k, v) -> shown.put(k, isCredentialKey(k) || mentionsCredential(v) ? REDACTED : v));
    return shown;
  }

  /**
   * Hides, in place, every scalar whose key names a credential; under {@code freeFormPaths} (dotted, e.g.
   * {@code spark.conf}) also the values that mention one. Returns {@code tree}.
   */
  public static JsonNode redactTree(JsonNode tree, List<String> freeFormPaths) {
    redact(tree, "", freeFormPaths);
    return tree;
  }

  private static void redact(JsonNode node, String path, List<String> freeFormPaths) {
    if (node instanceof ObjectNode obj) {
      boolean freeForm = freeFormPaths.contains(path);
      List<String> hide = new ArrayList<>();
      Iterator<Map.Entry<String, JsonNode>> it = obj.fields();
      while (it.hasNext()) {
        Map.Entry<String, JsonNode> e = it.next();
        JsonNode v = e.getValue();
        boolean scalar = !v.isNull() && !v.isContainerNode();
        if (scalar && (isCredentialKey(e.getKey()) || freeForm && mentionsCredential(v.asText()))) {
          hide.add(e.getKey());
        } else if (!freeForm && isCredentialKey(e.getKey()) && v.isContainerNode()) {
          // A whole section named like a credential (say, a map of keys): nothing in it is shown.
          hide.add(e.getKey());
        } else {
          redact(v, path.isEmpty() ? e.getKey() : path + "." + e.getKey(), freeFormPaths);
        }
      }
      hide.forEach(k -> obj.put(k, REDACTED));
    } else if (node != null && node.isArray()) {
      node.forEach(n -> redact(n, path, freeFormPaths));
    }
  }
}
