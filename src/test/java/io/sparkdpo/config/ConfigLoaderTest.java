package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
  @TempDir
  Path dir;

  private Path yaml(String text) throws IOException {
    Path f = dir.resolve("job.yaml");
    Files.writeString(f, text);
    return f;
  }

  @Test
  void defaultsBindAndValidate() {
    JobConfig cfg = ConfigLoader.defaults();
    assertEquals(512, cfg.prepare().maxLength());
    assertEquals(PrepareSettings.Format.AUTO, cfg.prepare().format());
    assertEquals(PrepareSettings.TruncationMode.KEEP_END, cfg.prepare().truncationMode());
    assertEquals("builtin:tiny", cfg.model().path());
    assertNull(cfg.spark().master());
  }

  @Test
  void everyRecordComponentHasADefaultAndEveryDefaultIsBound() {
    // Serialising the bound defaults must give back exactly the keys of defaults.yaml (no key silently ignored).
    JsonNode bound = ConfigLoader.toRedactedTree(ConfigLoader.defaults());
    assertEquals(keys(bound, ""), keys(readDefaults(), ""));
  }

  @Test
  void fileAndOverridesApplyInOrder() throws IOException {
    Path f = yaml("prepare:\n  max_length: 256\n  format: trl\nspark:\n  conf:\n    spark.sql.shuffle.partitions: '4'\n");
    JobConfig cfg = ConfigLoader.load(f, List.of("prepare.max_length=300", "spark.conf.spark.executor.cores=2"));
    assertEquals(300, cfg.prepare().maxLength());
    assertEquals(PrepareSettings.Format.TRL, cfg.prepare().format());
    assertEquals("4", cfg.spark().conf().get("spark.sql.shuffle.partitions"));
    assertEquals("2", cfg.spark().conf().get("spark.executor.cores"));
  }

  @Test
  void unknownKeyInFileIsNamedWithAllowedKeysAndSuggestion() throws IOException {
    Path f = yaml("prepare:\n  max_lenght: 10\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f, List.of()));
    assertTrue(e.getMessage().contains("unknown key 'prepare.max_lenght'"), e.getMessage());
    assertTrue(e.getMessage().contains("did you mean 'max_length'"), e.getMessage());
    assertTrue(e.getMessage().contains("max_prompt_length"), e.getMessage());
    assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
  }

  @Test
  void unknownSectionAndUnknownOverrideAreRejected() {
    ConfigException e1 = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("trainer.beta=0.1")));
    assertTrue(e1.getMessage().contains("unknown key 'trainer'"), e1.getMessage());
    assertTrue(e1.getMessage().contains("prepare"), e1.getMessage());
    ConfigException e2 = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("prepare.nope=1")));
    assertTrue(e2.getMessage().contains("unknown key 'prepare.nope'"), e2.getMessage());
  }

  @Test
  void wrongTypeNamesKeyAndExpectedType() {
    ConfigException e = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("prepare.max_length=many")));
    assertTrue(e.getMessage().contains("prepare.max_length"), e.getMessage());
    assertTrue(e.getMessage().contains("whole number"), e.getMessage());
  }

  @Test
  void badEnumListsAllowedValues() {
    ConfigException e = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("prepare.format=alpaca")));
    assertTrue(e.getMessage().contains("prepare.format"), e.getMessage());
    assertTrue(e.getMessage().contains("[auto, hh-rlhf, trl, ultrafeedback]"), e.getMessage());
  }

  @Test
  void outOfRangeValuesAreAllReported() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null,
        List.of("prepare.eval_fraction=1.5", "prepare.max_prompt_length=600", "model.device=tpu")));
    assertEquals(3, e.problems().size(), e.getMessage());
    assertTrue(e.getMessage().contains("prepare.eval_fraction: must be in [0.0, 1.0) (got 1.5)"), e.getMessage());
    assertTrue(e.getMessage().contains("prepare.max_prompt_length"), e.getMessage());
    assertTrue(e.getMessage().contains("model.device: must be one of [cpu, gpu, gpu:N] (got tpu)"), e.getMessage());
  }

  @Test
  void settingASectionToAScalarIsRejected() {
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(null, List.of("prepare=3")));
    assertTrue(e.getMessage().contains("prepare is a section"), e.getMessage());
  }

  @Test
  void secretsAreRedactedInTheEffectiveConfig() {
    JobConfig cfg = ConfigLoader.load(null, List.of(
        "storage.s3.access_key=AKIAEXAMPLEKEY", "storage.s3.secret_key=sup3r-s3cret",
        "spark.conf.spark.hadoop.fs.s3a.secret.key=other-s3cret"));
    assertEquals("sup3r-s3cret", cfg.storage().s3().secretKey());
    String printed = ConfigLoader.toRedactedYaml(cfg);
    assertFalse(printed.contains("sup3r-s3cret"), printed);
    assertFalse(printed.contains("AKIAEXAMPLEKEY"), printed);
    assertFalse(printed.contains("other-s3cret"), printed);
    assertTrue(printed.contains("***redacted***"), printed);
    assertTrue(printed.contains("tokenizer: auto"), printed);
    assertTrue(ConfigLoader.isSecretKey("session_token"));
    assertTrue(ConfigLoader.isSecretKey("fs.s3a.session.token"));
    assertTrue(ConfigLoader.isSecretKey("fs.s3a.access.key"));
    assertFalse(ConfigLoader.isSecretKey("max_prompt_length"));
    assertFalse(ConfigLoader.isSecretKey("tokenizer"));
  }

  @Test
  void halfCredentialsAreRejected() {
    ConfigException e = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("storage.s3.access_key=AKIA")));
    assertTrue(e.getMessage().contains("storage.s3.access_key/secret_key"), e.getMessage());
  }

  @Test
  void missingFileAndBadYamlAreClearErrors() throws IOException {
    ConfigException e1 = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(dir.resolve("absent.yaml"), List.of()));
    assertTrue(e1.getMessage().contains("absent.yaml"), e1.getMessage());
    Path bad = yaml("prepare: [unclosed\n");
    ConfigException e2 = assertThrows(ConfigException.class, () -> ConfigLoader.load(bad, List.of()));
    assertTrue(e2.getMessage().contains("not valid YAML"), e2.getMessage());
  }

  private static JsonNode readDefaults() {
    try (var in = ConfigLoader.class.getResourceAsStream("/io/sparkdpo/config/defaults.yaml")) {
      return new com.fasterxml.jackson.databind.ObjectMapper(
          new com.fasterxml.jackson.dataformat.yaml.YAMLFactory()).readTree(in);
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  private static java.util.TreeSet<String> keys(JsonNode node, String prefix) {
    java.util.TreeSet<String> out = new java.util.TreeSet<>();
    Iterator<String> it = node.fieldNames();
    while (it.hasNext()) {
      String k = it.next();
      JsonNode child = node.get(k);
      String full = prefix.isEmpty() ? k : prefix + "." + k;
      if (child.isObject() && !full.equals("spark.conf")) {
        out.addAll(keys(child, full));
      } else {
        out.add(full);
      }
    }
    return out;
  }
}
