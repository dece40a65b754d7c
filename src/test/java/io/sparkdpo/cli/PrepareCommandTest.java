package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class PrepareCommandTest {
  @TempDir
  Path dir;

  record Run(int exit, String out, String err) {}

  static Run run(String... args) {
    SharedSpark.get(); // the command's getOrCreate then reuses the test session
    return runWithoutSharedSession(args);
  }

  /** The command as bin/spark-dpo runs it: it builds its own session unless one is active. */
  static Run runWithoutSharedSession(String... args) {
    CommandLine cli = Main.commandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cli.setOut(new PrintWriter(out));
    cli.setErr(new PrintWriter(err));
    int exit = cli.execute(args);
    return new Run(exit, out.toString(), err.toString());
  }

  private static Path sampleData() {
    return Path.of(System.getProperty("project.basedir", ".")).resolve("sample-data/preferences");
  }

  private static long nonBlankLines(Path folder) throws IOException {
    long n = 0;
    try (Stream<Path> files = Files.list(folder)) {
      for (Path f : files.filter(f -> f.toString().endsWith(".jsonl")).toList()) {
        n += Files.readAllLines(f).stream().filter(l -> !l.isBlank()).count();
      }
    }
    return n;
  }

  @Test
  void preparesTheSampleDataWithNoConfigurationAndThenHasNothingToDo() throws IOException {
    Path out = dir.resolve("prepared");
    Run first = run("prepare", "--input", sampleData().toString(), "--output", out.toString());
    assertEquals(0, first.exit(), first.err());
    PreparedManifest m = PreparedManifest.read(Storage.local(), out.toString());
    assertEquals(nonBlankLines(sampleData()), m.counts().read());
    assertEquals(m.counts().read(), m.counts().kept() + m.counts().quarantined());
    assertEquals("builtin", m.tokenizer().spec());
    assertEquals(4096, m.tokenizer().vocabSize());
    assertEquals("hh", m.template().name());
    assertTrue(first.out().startsWith("prepare: read " + m.counts().read() + " rows: kept " + m.counts().kept()),
        first.out());
    assertTrue(Files.isRegularFile(out.resolve("train/shard-00000.parquet")));

    Run second = run("prepare", "--input", sampleData().toString(), "--output", out.toString());
    assertEquals(0, second.exit(), second.err());
    assertTrue(second.out().startsWith("prepare: " + out + " is up to date"), second.out());
  }

  @Test
  void anInputOfOnlyBadRowsExitsNonZeroAfterWritingTheQuarantineAndManifest() throws IOException {
    Path in = dir.resolve("bad.jsonl");
    Files.writeString(in, "not json\n{\"chosen\": 1, \"rejected\": 2}\n");
    Path out = dir.resolve("prepared");
    Run r = run("prepare", "--input", in.toString(), "--output", out.toString());
    assertEquals(1, r.exit(), r.out());
    assertTrue(r.err().contains("spark-dpo prepare failed: prepare: quarantined 2 of 2 rows (100.0%"), r.err());
    assertEquals(2, PreparedManifest.read(Storage.local(), out.toString()).counts().quarantined());
    assertTrue(Files.isDirectory(out.resolve("quarantine")));
  }

  @Test
  void anUnknownFormatIsAConfigurationErrorListingTheAllowedOnes() {
    Run r = run("prepare", "--input", sampleData().toString(), "--output", dir.toString(), "--format", "csv");
    assertEquals(Main.EXIT_CONFIG, r.exit());
    assertTrue(r.err().contains("prepare.format: 'csv' is not allowed; allowed values: [auto, hh-rlhf, trl, ultrafeedback]"),
        r.err());
  }

  @Test
  void aMissingInputFailsNamingThePath() {
    Path missing = dir.resolve("missing");
    Run r = run("prepare", "--input", missing.toString(), "--output", dir.resolve("out").toString());
    assertEquals(1, r.exit());
    assertTrue(r.err().contains("spark-dpo prepare failed: input path " + missing + " does not exist"), r.err());
  }

  @Test
  void preparesATableNamedInPrepareInputAndNeedsSomeInput() {
    var spark = SharedSpark.get();
    String table = "i15_cli_pairs";
    spark.sql("DROP TABLE IF EXISTS " + table);
    try {
      spark.read().json(spark.createDataset(java.util.List.of(
          "{\"chosen\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello\", \"rejected\": \"\\n\\nHuman: Hi\\n\\nAssistant: Go\"}",
          "{\"chosen\": \"\\n\\nHuman: Sky?\\n\\nAssistant: Blue\", \"rejected\": \"\\n\\nHuman: Sky?\\n\\nAssistant: Red\"}"),
          org.apache.spark.sql.Encoders.STRING())).write().option("path", dir.resolve("warehouse").toString())
          .saveAsTable(table);
      Path out = dir.resolve("prepared");
      Run r = run("prepare", "--output", out.toString(), "--set", "prepare.input=[\"table:" + table + "\"]",
          "--set", "prepare.eval_fraction=0.0");
      assertEquals(0, r.exit(), r.err());
      assertTrue(r.out().startsWith("prepare: read 2 rows: kept 2"), r.out());
      assertEquals("table:spark_catalog.default." + table,
          PreparedManifest.read(Storage.local(), out.toString()).input().files().get(0).path());
    } finally {
      spark.sql("DROP TABLE IF EXISTS " + table);
    }
    Run none = run("prepare", "--output", dir.resolve("none").toString());
    assertEquals(Main.EXIT_CONFIG, none.exit());
    assertTrue(none.err().contains("prepare needs --input PATH|table:NAME"), none.err());
  }
}
