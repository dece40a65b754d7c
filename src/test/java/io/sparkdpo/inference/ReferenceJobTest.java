package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.PreparedShardReader;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReferenceJobTest {
  @TempDir
  static Path shared;
  static Path prepared;
  static SparkSession spark;

  @TempDir
  Path dir;

  @BeforeAll
  static void prepareOnce() {
    spark = SharedSpark.get();
    prepared = ReferenceFixtures.prepare(spark, shared.resolve("prepared"), 3);
  }

  private ReferenceJob.Result reference(long seed, Path out, String... overrides) {
    return new ReferenceJob(spark, ReferenceFixtures.config(seed, overrides)).run(prepared.toString(), out.toString());
  }

  private ReferenceJob.Result reference(long seed, Path data, Path out) {
    return new ReferenceJob(spark, ReferenceFixtures.config(seed)).run(data.toString(), out.toString());
  }

  @Test
  void storedLogProbsEqualAnInProcessForwardAndTheModelLoadsOncePerJvm() {
    long seed = ReferenceFixtures.freshSeed();
    long loadsBefore = ExecutorModels.loads();
    ReferenceJob.Result r = reference(seed, dir.resolve("ref"), "reference.partitions=6");

    List<PreparedPair> pairs = ReferenceFixtures.pairs(dir.resolve("ref"));
    assertEquals(50, pairs.size());
    double worst = ReferenceFixtures.assertMatches(pairs, ReferenceFixtures.inProcess(seed, pairs));
    System.out.printf("reference vs in-process: worst |difference| of a sum %.2e%n", worst);
    // Six tasks, one JVM (local[2]): one load, counted by the tasks and by the JVM itself.
    ExecutorStats.Summary s = r.executors().orElseThrow();
    assertEquals(6, s.tasks());
    assertEquals(1, s.modelLoads());
    assertEquals(1, s.jvms().size());
    assertEquals(loadsBefore + 1, ExecutorModels.loads());
    ReferenceManifest.Info info = r.manifest().reference();
    assertEquals(1, info.modelLoads());
    assertEquals(50, info.pairs());
    assertEquals(pairs.stream().mapToLong(p -> p.chosenIds().length + p.rejectedIds().length).sum(),
        info.responseTokens());
  }

  @Test
  void keepsEveryShardNameRowOrderAndPreparedColumnAndAddsTokenCounts() {
    reference(ReferenceFixtures.freshSeed(), dir.resolve("ref"), "reference.partitions=4");
    PreparedManifest in = ReferenceFixtures.readManifest(prepared);
    PreparedManifest out = ReferenceFixtures.readManifest(dir.resolve("ref"));
    Storage storage = Storage.local();
    for (String split : List.of(PreparedManifest.TRAIN, PreparedManifest.EVAL)) {
      List<PreparedManifest.Shard> a = in.splits().get(split).shards();
      List<PreparedManifest.Shard> b = out.splits().get(split).shards();
      assertEquals(a.stream().map(PreparedManifest.Shard::file).toList(),
          b.stream().map(PreparedManifest.Shard::file).toList());
      for (int i = 0; i < a.size(); i++) {
        assertEquals(a.get(i).rows(), b.get(i).rows());
        assertEquals(a.get(i).tokens(), b.get(i).tokens());
        List<PreparedPair> before = PreparedShardReader.read(storage, prepared.resolve(a.get(i).file()).toString());
        List<PreparedPair> after = PreparedShardReader.read(storage, dir.resolve("ref").resolve(b.get(i).file())
            .toString());
        assertEquals(before.stream().map(PreparedPair::pairId).toList(), after.stream().map(PreparedPair::pairId)
            .toList(), b.get(i).file() + " row order");
        for (int k = 0; k < before.size(); k++) {
          PreparedPair x = before.get(k);
          PreparedPair y = after.get(k);
          assertEquals(List.of(x.sourceFile(), x.sourceRow(), x.promptText(), x.chosenText(), x.rejectedText(),
              x.promptLen(), x.chosenLen(), x.rejectedLen(), x.truncated()), List.of(y.sourceFile(), y.sourceRow(),
              y.promptText(), y.chosenText(), y.rejectedText(), y.promptLen(), y.chosenLen(), y.rejectedLen(),
              y.truncated()));
          assertArrayEquals(x.promptIds(), y.promptIds());
          assertArrayEquals(x.chosenIds(), y.chosenIds());
          assertArrayEquals(x.rejectedIds(), y.rejectedIds());
          assertTrue(y.refChosenLogp() < 0 && y.refRejectedLogp() < 0);
        }
      }
    }
    // The counts sit next to the log-probs, readable by Spark too.
    List<Row> counts = spark.read().parquet(dir.resolve("ref/train").toString())
        .selectExpr("ref_chosen_tokens = chosen_len AND ref_rejected_tokens = rejected_len AS same").collectAsList();
    assertEquals(in.splits().get(PreparedManifest.TRAIN).rows(), counts.size());
    assertTrue(counts.stream().allMatch(row -> row.getBoolean(0)));
  }

  @Test
  void manifestNamesTheModelAndDataFingerprintsTheTrainerChecks() throws IOException {
    long seed = ReferenceFixtures.freshSeed();
    reference(seed, dir.resolve("ref"));
    JsonNode m = Json.MAPPER.readTree(dir.resolve("ref/manifest.json").toFile());
    assertEquals("reference", m.get("stage").asText());
    assertEquals(CausalLM.fingerprintOf(CausalLM.BUILTIN_TINY, Storage.local(), seed),
        m.path("reference").path("model_fingerprint").asText());
    assertEquals("builtin:tiny", m.path("reference").path("model").asText());
    PreparedManifest in = ReferenceFixtures.readManifest(prepared);
    assertEquals(ReferenceJob.dataFingerprint(in), m.path("reference").path("data_fingerprint").asText());
    assertEquals(prepared.toString(), m.path("reference").path("data").asText());
    // Everything the manifest lists is in the folder: shards with their new checksums, and the quarantine.
    ReferenceManifest read = ReferenceManifest.read(Storage.local(), dir.resolve("ref").toString());
    for (PreparedManifest.Split split : read.data().splits().values()) {
      for (PreparedManifest.Shard shard : split.shards()) {
        assertEquals(shard.bytes(), Files.size(dir.resolve("ref").resolve(shard.file())));
      }
    }
    for (PreparedManifest.QuarantineFile q : read.data().quarantine()) {
      assertArrayEquals(Files.readAllBytes(prepared.resolve(q.file())), Files.readAllBytes(dir.resolve("ref")
          .resolve(q.file())));
    }
    assertFalse(Files.exists(dir.resolve("ref/_reference-tmp")));
  }

  @Test
  void logProbsDoNotDependOnWhereTheInputFileLived() throws IOException {
    // The prepared rows record their source path; the same pairs from a longer path must get the same batches.
    Path near = dir.resolve("a").resolve("pairs.jsonl");
    Path far = dir.resolve("a-much-longer-folder").resolve("with/several/levels/of/nesting").resolve("pairs.jsonl");
    for (Path p : List.of(near, far)) {
      Files.createDirectories(p.getParent());
      Files.copy(ReferenceFixtures.SAMPLE_PAIRS, p);
    }
    long seed = ReferenceFixtures.freshSeed();
    java.util.Map<String, double[]> byPair = new java.util.HashMap<>();
    int compared = 0;
    for (Path input : List.of(near, far)) {
      String name = input == near ? "near" : "far";
      Path data = ReferenceFixtures.prepare(spark, input, dir.resolve("prepared-" + name), 3);
      Path out = dir.resolve("referenced-" + name);
      new ReferenceJob(spark, ReferenceFixtures.config(seed, "reference.partitions=3", "reference.batch_tokens=1024"))
          .run(data.toString(), out.toString());
      for (PreparedPair p : ReferenceFixtures.pairs(out)) {
        double[] v = {p.refChosenLogp(), p.refRejectedLogp()};
        double[] before = byPair.putIfAbsent(p.pairId(), v);
        if (before != null) {
          assertArrayEquals(before, v, 0.0, "pair " + p.pairId() + " from " + p.sourceFile());
          compared++;
        }
      }
    }
    assertEquals(50, compared, "every pair compared");
  }

  @Test
  void referenceColumnsTheInputAlreadyCarriesAreRecomputedNotKept() throws IOException {
    // A copy of the prepared folder whose first train shard carries TRL-named and legacy reference columns.
    Path carrying = dir.resolve("carrying");
    try (var files = Files.walk(prepared)) {
      for (Path f : files.toList()) {
        Files.copy(f, carrying.resolve(prepared.relativize(f).toString()));
      }
    }
    PreparedManifest.Shard first = ReferenceFixtures.readManifest(prepared).splits().get(PreparedManifest.TRAIN)
        .shards().get(0);
    Path rewritten = dir.resolve("rewritten");
    spark.read().parquet(prepared.resolve(first.file()).toString())
        .withColumn("ref_chosen_logps", org.apache.spark.sql.functions.lit(-999.0))
        .withColumn("ref_rejected_logps", org.apache.spark.sql.functions.lit(-999.0))
        .withColumn("ref_chosen_logp", org.apache.spark.sql.functions.lit(-999.0))
        .coalesce(1).write().parquet(rewritten.toString());
    try (var parts = Files.list(rewritten)) {
      Files.move(parts.filter(f -> f.toString().endsWith(".parquet")).findFirst().orElseThrow(),
          carrying.resolve(first.file()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
    com.fasterxml.jackson.databind.node.ObjectNode manifest =
        (com.fasterxml.jackson.databind.node.ObjectNode) Json.MAPPER.readTree(carrying.resolve("manifest.json").toFile());
    com.fasterxml.jackson.databind.node.ObjectNode entry =
        (com.fasterxml.jackson.databind.node.ObjectNode) manifest.path("splits").path("train").path("shards").get(0);
    entry.put("bytes", Files.size(carrying.resolve(first.file())));
    entry.put("sha256", io.sparkdpo.data.ShardChecksums.sha256(Storage.local(),
        carrying.resolve(first.file()).toString()));
    Json.MAPPER.writeValue(carrying.resolve("manifest.json").toFile(), manifest);

    long seed = ReferenceFixtures.freshSeed();
    reference(seed, carrying, dir.resolve("ref-carrying"));
    List<PreparedPair> pairs = ReferenceFixtures.pairs(dir.resolve("ref-carrying"));
    assertEquals(50, pairs.size());
    ReferenceFixtures.assertMatches(pairs, ReferenceFixtures.inProcess(seed, pairs)); // the model's, not -999
    assertEquals(List.of("ref_chosen_logps", "ref_rejected_logps", "ref_chosen_tokens", "ref_rejected_tokens"),
        List.of(spark.read().parquet(dir.resolve("ref-carrying").resolve(first.file()).toString()).columns())
            .subList(13, 17));
    assertEquals(17, spark.read().parquet(dir.resolve("ref-carrying").resolve(first.file()).toString())
        .columns().length);
  }

  @Test
  void rerunWithTheSameDataAndModelReusesTheStoredLogProbsAndAnotherModelOrDataRecomputes() throws IOException {
    long seed = ReferenceFixtures.freshSeed();
    Path out = dir.resolve("ref");
    ReferenceJob.Result first = reference(seed, out);
    byte[] manifest = Files.readAllBytes(out.resolve("manifest.json"));
    long loads = ExecutorModels.loads();

    ReferenceJob.Result again = reference(seed, out, "reference.batch_tokens=4096");
    assertTrue(again.upToDate());
    assertTrue(again.executors().isEmpty());
    assertEquals(loads, ExecutorModels.loads());
    assertArrayEquals(manifest, Files.readAllBytes(out.resolve("manifest.json")));

    ReferenceJob.Result otherModel = reference(seed + 1, out);
    assertFalse(otherModel.upToDate());
    assertNotEquals(first.manifest().reference().modelFingerprint(), otherModel.manifest().reference()
        .modelFingerprint());
    assertNotEquals(first.manifest().reference().modelFingerprint(), ReferenceManifest.read(Storage.local(),
        out.toString()).reference().modelFingerprint());

    Path otherData = ReferenceFixtures.prepare(spark, dir.resolve("prepared-2-shards"), 2);
    ReferenceJob.Result otherInput = new ReferenceJob(spark, ReferenceFixtures.config(seed + 1))
        .run(otherData.toString(), out.toString());
    assertFalse(otherInput.upToDate());
    assertNotEquals(otherModel.manifest().reference().dataFingerprint(),
        otherInput.manifest().reference().dataFingerprint());
    assertEquals(2, ReferenceFixtures.readManifest(out).splits().get(PreparedManifest.TRAIN).shards().size());

    Files.delete(out.resolve(ReferenceFixtures.readManifest(out).splits().get(PreparedManifest.TRAIN).shards().get(0)
        .file()));
    assertFalse(new ReferenceJob(spark, ReferenceFixtures.config(seed + 1)).run(otherData.toString(), out.toString())
        .upToDate(), "a missing shard is recomputed");
  }

  @Test
  void trlMarginsInThePreparedShardsAreKeptBesideTheReferenceColumns() throws IOException {
    Path input = dir.resolve("margins.jsonl");
    List<String> rows = new java.util.ArrayList<>();
    for (int i = 1; i <= 6; i++) {
      rows.add("{\"prompt\": \"Question " + i + "?\", \"chosen\": \"A kind answer " + i + ".\", "
          + "\"rejected\": \"No.\", \"margin\": " + (0.25 * i) + "}");
    }
    Files.write(input, rows);
    JobConfig prepareCfg = ConfigLoader.load(null, List.of("prepare.tokenizer=builtin", "prepare.format=trl",
        "prepare.max_length=192", "prepare.max_prompt_length=96", "prepare.eval_fraction=0.0", "prepare.num_shards=2"));
    Path data = dir.resolve("with-margins");
    new PrepareJob(spark, prepareCfg, 1).run(List.of(input.toString()), data.toString());
    reference(ReferenceFixtures.freshSeed(), data, dir.resolve("ref"));
    List<PreparedPair> pairs = ReferenceFixtures.pairs(dir.resolve("ref"));
    assertEquals(6, pairs.size());
    for (PreparedPair p : pairs) {
      assertEquals(0.25 * p.sourceRow(), p.margin(), 0.0, "pair of row " + p.sourceRow());
      assertTrue(p.refChosenLogp() != null && p.refChosenLogp() < 0, "reference log-probs computed");
    }
  }

  @Test
  void anEmptyShardStaysAValidEmptyShard() {
    JobConfig prepareCfg = ConfigLoader.load(null, List.of("prepare.tokenizer=builtin",
        "prepare.max_length=192", "prepare.max_prompt_length=96", "prepare.eval_fraction=0.0", "prepare.num_shards=2"));
    Path data = dir.resolve("no-eval");
    new PrepareJob(spark, prepareCfg, 1).run(List.of(ReferenceFixtures.SAMPLE_PAIRS.toString()),
        data.toString());
    PreparedManifest in = ReferenceFixtures.readManifest(data);
    assertEquals(0, in.splits().get(PreparedManifest.EVAL).rows());
    reference(ReferenceFixtures.freshSeed(), data, dir.resolve("ref"));
    PreparedManifest out = ReferenceFixtures.readManifest(dir.resolve("ref"));
    assertEquals(in.splits().get(PreparedManifest.EVAL).shards().size(),
        out.splits().get(PreparedManifest.EVAL).shards().size());
    for (PreparedManifest.Shard s : out.splits().get(PreparedManifest.EVAL).shards()) {
      assertEquals(0, PreparedShardReader.read(Storage.local(), dir.resolve("ref").resolve(s.file()).toString()).size());
      assertEquals(List.of("ref_chosen_logps"), List.of(spark.read().parquet(dir.resolve("ref").resolve(s.file())
          .toString()).schema().fieldNames()).subList(13, 14));
    }
    assertEquals(50, ReferenceFixtures.pairs(dir.resolve("ref")).size());
  }

  @Test
  void refusesToOverwriteThePreparedFolderAndDataTokenizedForAnotherModel() throws IOException {
    IllegalArgumentException same = assertThrows(IllegalArgumentException.class,
        () -> reference(1, prepared));
    assertTrue(same.getMessage().contains("is the prepared folder itself"), same.getMessage());

    Path manifest = dir.resolve("copy/manifest.json");
    Files.createDirectories(manifest.getParent());
    Files.writeString(manifest, Files.readString(prepared.resolve("manifest.json"))
        .replace(ReferenceFixtures.readManifest(prepared).tokenizer().fingerprint(), "0123456789abcdef0123"));
    IllegalArgumentException other = assertThrows(IllegalArgumentException.class,
        () -> new ReferenceJob(spark, ReferenceFixtures.config(1)).run(dir.resolve("copy").toString(),
            dir.resolve("out").toString()));
    assertTrue(other.getMessage().contains("was tokenized with 'builtin' (fingerprint 0123456789abcdef)"),
        other.getMessage());
  }
}
