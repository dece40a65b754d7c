package io.sparkdpo.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class RedactionTest {
  /** Keys that hold credentials in Hadoop, the cloud connectors, Spark and our own YAML. */
  static final List<String> CREDENTIAL_KEYS = List.of(
      "storage.s3.access_key", "secret_key", "session_token",
      "fs.s3a.access.key", "fs.s3a.secret.key", "fs.s3a.session.token",
      "fs.s3a.encryption.key", "fs.s3a.server-side-encryption.key", "fs.s3a.bucket.b.encryption.key",
      "fs.azure.account.key.acct.dfs.core.windows.net", "fs.azure.account.key.acct.blob.core.windows.net",
      "fs.azure.account.oauth2.client.secret", "fs.azure.account.oauth2.client.endpoint", "fs.azure.sas.fixed.token",
      "google.cloud.auth.service.account.json.keyfile", "fs.gs.auth.service.account.private.key",
      "fs.gs.auth.service.account.private.key.id", "hadoop.security.credential.provider.path",
      "spark.authenticate.secret", "spark.ssl.keyPassword", "spark.ssl.keyStorePassword",
      "spark.kubernetes.authenticate.submission.oauthToken", "spark.kubernetes.authenticate.driver.clientKeyFile",
      "x.request.signature", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "azure.storage.accountKey",
      "aws.sessionToken", "api_key", "ssl.key", "ssh.passphrase", "db.passwd");

  /** Settings that must stay visible: ours (prepare.tokenizer is an output-affecting setting) and Spark's. */
  static final List<String> PLAIN_KEYS = List.of(
      "tokenizer", "prepare.tokenizer", "batch_tokens", "reference.batch_tokens", "max_new_tokens", "step_tokens",
      "max_prompt_length", "model.path", "keep_end", "spark.io.encryption.keySizeBits", "spark.sql.shuffle.partitions",
      "spark.master", "spark.app.name", "spark.task.reaper.killTimeout", "spark.network.crypto.enabled",
      "fs.s3a.endpoint", "fs.s3a.path.style.access", "monkey", "keyword", "fault_injection.kind");

  @Test
  void everyCredentialLikeKeyIsRecognised() {
    for (String key : CREDENTIAL_KEYS) {
      assertTrue(Redaction.isCredentialKey(key), key);
    }
  }

  @Test
  void plainSettingsStayVisible() {
    for (String key : PLAIN_KEYS) {
      assertFalse(Redaction.isCredentialKey(key), key);
    }
  }

  @Test
  void sparkReadsTheSameRuleAsWeDo() {
    // Spark compiles spark.redaction.regex with Scala's .r (java.util.regex) and searches keys and values with it.
    Pattern spark = Pattern.compile(Redaction.SPARK_REGEX);
    for (String key : CREDENTIAL_KEYS) {
      assertTrue(spark.matcher("spark.hadoop." + key).find(), key);
    }
    for (String key : PLAIN_KEYS) {
      assertFalse(spark.matcher(key).find(), key);
    }
    // Spark's default misses these (the drill's SSE key and Azure account key reached the UI and event log).
    Pattern sparkDefault = Pattern.compile("(?i)secret|password|token|access[.]?key");
    assertFalse(sparkDefault.matcher("spark.hadoop.fs.s3a.encryption.key").find());
    assertFalse(sparkDefault.matcher("spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net").find());
  }

  @Test
  void freeFormSettingsHideCredentialKeysAndValuesThatMentionOne() {
    Map<String, String> shown = Redaction.freeForm(Map.of(
        "spark.hadoop.fs.s3a.encryption.key", "k-1",
        "spark.driver.extraJavaOptions", "-Dfs.azure.account.key.a.dfs.core.windows.net=k-2",
        "spark.sql.shuffle.partitions", "8"));
    assertEquals(Map.of("spark.hadoop.fs.s3a.encryption.key", Redaction.REDACTED,
        "spark.driver.extraJavaOptions", Redaction.REDACTED, "spark.sql.shuffle.partitions", "8"), shown);
  }

  @Test
  void redactedTreesKeepPlainValuesAndHideCredentials() {
    JobConfig cfg = ConfigLoader.load(null, List.of("storage.s3.access_key=AK-1", "storage.s3.secret_key=SK-1",
        "spark.conf.spark.hadoop.fs.azure.account.key.a.blob.core.windows.net=AZ-1",
        "spark.conf.spark.executor.extraJavaOptions=-Dfs.s3a.encryption.key=SSE-1", "prepare.tokenizer=builtin"));
    JsonNode tree = ConfigLoader.toRedactedTree(cfg);
    String text = tree.toString();
    for (String fake : List.of("AK-1", "SK-1", "AZ-1", "SSE-1")) {
      assertFalse(text.contains(fake), fake + " in " + text);
    }
    assertEquals("builtin", tree.at("/prepare/tokenizer").asText());
    assertEquals(8192, tree.at("/reference/batch_tokens").asInt());
    assertEquals(Redaction.REDACTED, tree.at("/storage/s3/secret_key").asText());
    assertTrue(tree.at("/storage/s3/endpoint").isNull(), "unset stays null: " + tree.at("/storage/s3"));
  }

  @Test
  void recordsHoldingCredentialsDoNotPrintThem() {
    JobConfig cfg = ConfigLoader.load(null, List.of("storage.s3.access_key=AK-2", "storage.s3.secret_key=SK-2",
        "storage.s3.session_token=ST-2", "storage.s3.endpoint=http://127.0.0.1:9090",
        "spark.conf.spark.hadoop.fs.s3a.encryption.key=SSE-2", "spark.conf.spark.sql.shuffle.partitions=8"));
    String printed = cfg.toString();
    for (String fake : List.of("AK-2", "SK-2", "ST-2", "SSE-2")) {
      assertFalse(printed.contains(fake), fake + " in " + printed);
    }
    assertTrue(printed.contains("endpoint=http://127.0.0.1:9090"), printed);
    assertTrue(printed.contains("spark.sql.shuffle.partitions=8"), printed);
    assertTrue(cfg.storage().s3().toString().contains("secretKey=" + Redaction.REDACTED), cfg.storage().toString());
    assertEquals("SK-2", cfg.storage().s3().secretKey(), "the value itself is intact for the code that uses it");
  }

  @Test
  void errorMessagesAboutOverridesDoNotEchoCredentials() {
    ConfigException typo = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("storage.s3.secret_kee=SK-3")));
    assertFalse(typo.getMessage().contains("SK-3"), typo.getMessage());
    assertTrue(typo.getMessage().contains("storage.s3.secret_kee"), typo.getMessage());
    ConfigException section = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("storage.s3.secret_key.x=SK-4")));
    assertFalse(section.getMessage().contains("SK-4"), section.getMessage());
    ConfigException shape = assertThrows(ConfigException.class,
        () -> ConfigLoader.load(null, List.of("storage.s3.secret_key=[SK-5]")));
    assertFalse(shape.getMessage().contains("SK-5"), shape.getMessage());
  }
}
