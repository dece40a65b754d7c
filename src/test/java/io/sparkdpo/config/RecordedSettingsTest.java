package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

class RecordedSettingsTest {
  private static final JobConfig CFG = ConfigLoader.load(null, List.of("prepare.max_length=256",
      "model.path=builtin:tiny", "storage.s3.access_key=AK-1", "storage.s3.secret_key=SK-1",
      "spark.conf.spark.hadoop.fs.s3a.encryption.key=SSE-1", "spark.conf.spark.sql.shuffle.partitions=8"));

  private static Set<String> keys(JsonNode n) {
    Set<String> keys = new TreeSet<>();
    n.fieldNames().forEachRemaining(keys::add);
    return keys;
  }

  @Test
  void prepareRecordsItsOwnSectionAndTheModelPathOnly() {
    ObjectNode recorded = RecordedSettings.of(CFG, RecordedSettings.PREPARE);
    assertEquals(Set.of("prepare", "model"), keys(recorded));
    assertEquals(Set.of("path"), keys(recorded.get("model")));
    assertEquals("builtin:tiny", recorded.at("/model/path").asText());
    assertEquals(256, recorded.at("/prepare/max_length").asInt());
    assertEquals(ConfigLoader.toRedactedTree(CFG).get("prepare"), recorded.get("prepare"),
        "the prepare section is recorded whole, as the fingerprint hashes it");
    String text = recorded.toString();
    for (String absent : List.of("AK-1", "SK-1", "SSE-1", "shuffle", "storage", "spark")) {
      assertFalse(text.contains(absent), absent + " in " + text);
    }
  }

  @Test
  void sparkAndStorageAreNeverRecorded() {
    for (String path : List.of("spark", "spark.conf", "storage", "storage.s3.secret_key")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> RecordedSettings.of(CFG, List.of(path)));
      assertTrue(e.getMessage().contains("never recorded"), e.getMessage());
      assertThrows(IllegalArgumentException.class, () -> RecordedSettings.section(CFG, path));
    }
    assertThrows(IllegalArgumentException.class, () -> RecordedSettings.of(CFG, List.of("prepare.no_such_key")));
  }

  @Test
  void aManifestOfAnOlderVersionIsCutDownToTheAllowlist() {
    // Before the allowlist, a prepared manifest held the whole (redacted) configuration, Spark conf included; the
    // reference stage copies it forward and must not carry the Spark conf on.
    JsonNode old = ConfigLoader.toRedactedTree(CFG);
    assertTrue(old.has("spark"));
    ObjectNode filtered = RecordedSettings.filter(old, RecordedSettings.PREPARE);
    assertEquals(RecordedSettings.of(CFG, RecordedSettings.PREPARE), filtered);
    assertNull(RecordedSettings.filter(null, RecordedSettings.PREPARE));
  }

  @Test
  void sectionsAreCopiesOfTheRedactedTree() {
    JsonNode generate = RecordedSettings.section(CFG, "generate");
    assertEquals(ConfigLoader.toRedactedTree(CFG).get("generate"), generate);
    ((ObjectNode) generate).remove("seed");
    assertTrue(RecordedSettings.section(CFG, "generate").has("seed"));
  }
}
