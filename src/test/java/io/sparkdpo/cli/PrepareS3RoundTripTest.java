package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.S3Settings;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.PreparedShardReader;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.WriterAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.layout.PatternLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Input read from and output written to an S3 server through s3a, with credentials that never reach a log. */
class PrepareS3RoundTripTest {
  private static final String ACCESS_KEY = "AKIATESTONLY7Q3XZ";
  private static final String SECRET_KEY = "s3cr3t-Never-Log-Me-4f9c2e";

  @TempDir
  Path dir;

  @Test
  void preparesFromS3ToS3WithoutLeakingCredentials() throws Exception {
    try (S3MockServer s3 = S3MockServer.start("bucket", dir, Duration.ofSeconds(90))) {
      S3Settings settings = new S3Settings(s3.endpoint(), "us-east-1", true, false, ACCESS_KEY, SECRET_KEY, null);
      Storage storage = new Storage(S3aSettings.hadoopConfiguration(settings));
      String pairs = String.join("\n",
          "{\"prompt\": \"Capital of France?\", \"chosen\": \"Paris.\", \"rejected\": \"Lyon.\"}",
          "{\"prompt\": \"2+2?\", \"chosen\": \"4\", \"rejected\": \"22\"}",
          "{\"prompt\": \"Colour of snow?\", \"chosen\": \"White.\"}",
          "{\"prompt\": \"Largest ocean?\", \"chosen\": \"Pacific.\", \"rejected\": \"Atlantic.\"}") + "\n";
      storage.writeString("s3a://bucket/raw/pairs.jsonl", pairs);

      StringWriter logs = new StringWriter();
      WriterAppender appender = captureLogs(logs);
      PrepareCommandTest.Run r;
      try {
        r = PrepareCommandTest.run("prepare", "--input", "s3a://bucket/raw", "--output", "s3a://bucket/prepared",
            "--set", "storage.s3.endpoint=" + s3.endpoint(), "--set", "storage.s3.region=us-east-1",
            "--set", "storage.s3.path_style_access=true", "--set", "storage.s3.ssl=false",
            "--set", "storage.s3.access_key=" + ACCESS_KEY, "--set", "storage.s3.secret_key=" + SECRET_KEY,
            "--set", "prepare.eval_fraction=0");
      } finally {
        stopCapturing(appender);
      }
      assertEquals(0, r.exit(), r.err());

      String manifestText = storage.readString("s3a://bucket/prepared/manifest.json");
      PreparedManifest m = PreparedManifest.read(storage, "s3a://bucket/prepared");
      assertEquals(4, m.counts().read());
      assertEquals(3, m.counts().kept());
      assertEquals(1L, m.counts().reasons().get("missing_field"));
      assertEquals("s3a://bucket/raw/pairs.jsonl", m.input().files().get(0).path());
      assertNotNull(m.input().files().get(0).etag(), "object stores fingerprint by ETag");
      List<PreparedPair> train = PreparedShardReader.read(storage, "s3a://bucket/prepared/train/shard-00000.parquet");
      assertEquals(3, train.size());
      assertEquals(List.of(1L, 2L, 4L), train.stream().map(PreparedPair::sourceRow).sorted().toList());
      String quarantine = storage.readString("s3a://bucket/prepared/quarantine/part-00000.jsonl");
      assertTrue(quarantine.contains("\"source_row\":3") && quarantine.contains("\"field\":\"rejected\""), quarantine);
      assertTrue(m.config().path("storage").isMissingNode(), "storage settings are never recorded: " + m.config());
      assertEquals("builtin:tiny", m.config().at("/model/path").asText(), m.config().toString());

      String everything = logs + r.out() + r.err() + manifestText + quarantine;
      assertTrue(logs.toString().contains("effective configuration"), "the redacted config was logged: " + logs);
      assertFalse(everything.contains(SECRET_KEY), "secret key leaked");
      assertFalse(everything.contains(ACCESS_KEY), "access key leaked");
    }
  }

  /** Every log line of every logger, as the configured levels let through, plus our own at INFO. */
  private static WriterAppender captureLogs(StringWriter target) {
    LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
    Configuration config = ctx.getConfiguration();
    WriterAppender appender = WriterAppender.newBuilder().setName("capture-" + System.nanoTime()).setTarget(target)
        .setLayout(PatternLayout.newBuilder().withPattern("%p %c %m%n%ex").build()).build();
    appender.start();
    config.addAppender(appender);
    config.getRootLogger().addAppender(appender, Level.ALL, null);
    config.getLoggers().values().forEach(l -> {
      if (!l.isAdditive()) {
        l.addAppender(appender, Level.ALL, null);
      }
    });
    ctx.updateLoggers();
    return appender;
  }

  private static void stopCapturing(WriterAppender appender) {
    LoggerContext ctx = (LoggerContext) LogManager.getContext(false);
    Configuration config = ctx.getConfiguration();
    config.getRootLogger().removeAppender(appender.getName());
    config.getLoggers().values().forEach(l -> l.removeAppender(appender.getName()));
    ctx.updateLoggers();
    appender.stop();
  }
}
