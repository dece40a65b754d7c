package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.distributed.TrainingStage;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelExport;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.testing.SharedSpark;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model folder whose config.json the model refuses (here rope_scaling of type yarn) fails every job that would load
 * it on executors or in a barrier stage on the driver, in one line naming the file and the key, before any Spark job
 * starts (today's alternative: every task fails with the same stack trace).
 */
class ModelConfigCheckedOnDriverTest {
  @TempDir
  static Path shared;
  private static SparkSession spark;
  private static Path prepared;
  private static Path badModel;

  @TempDir
  Path dir;

  @BeforeAll
  static void setUp() throws Exception {
    spark = SharedSpark.get();
    prepared = ReferenceFixtures.prepare(spark, shared.resolve("prepared"), 1);
    // A real folder (the built-in model with its tokenizer, so tokenizer checks pass) whose config asks for YaRN.
    badModel = shared.resolve("yarn-model");
    try (CausalLM tiny = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), CausalLM.device("cpu"), 7)) {
      tiny.save(badModel.toString(), Storage.local(), DataType.FLOAT32);
    }
    Path config = badModel.resolve("config.json");
    ObjectNode n = (ObjectNode) Json.MAPPER.readTree(config.toFile());
    n.set("rope_scaling", Json.MAPPER.readTree(
        "{\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 128}"));
    Files.writeString(config, n.toPrettyString());
  }

  @Test
  void referenceRefusesOnTheDriver() {
    JobConfig cfg = ReferenceFixtures.config(7, "model.path=" + badModel);
    assertRefusedWithoutSparkJobs(() -> new ReferenceJob(spark, cfg).run(prepared.toString(),
        dir.resolve("referenced").toString()));
  }

  @Test
  void generateRefusesOnTheDriver() {
    JobConfig cfg = GenerateJobTest.config(7, "generate.model=" + badModel);
    assertRefusedWithoutSparkJobs(() -> new GenerateJob(spark, cfg).run(dir.resolve("generated").toString()));
  }

  @Test
  void dpoTrainingRefusesOnTheDriverForThePolicyAndTheReference() {
    for (String model : List.of("model.path=" + badModel, "reference.model=" + badModel)) {
      // in_loop: the workers would load both models (precomputed would first refuse the unreferenced data)
      JobConfig cfg = ReferenceFixtures.config(7, model, "train.reference_mode=in_loop", "train.max_steps=1",
          "train.per_device_train_batch_size=4", "train.output_dir=" + dir.resolve("run-" + model.charAt(0)));
      assertRefusedWithoutSparkJobs(() -> new TrainingStage(spark, cfg, SessionSpec.Stage.DPO)
          .run(TrainingStage.Inputs.prepared(prepared.toString())));
    }
  }

  @Test
  void sftRefusesOnTheDriver() {
    JobConfig cfg = ReferenceFixtures.config(7, "model.path=" + badModel, "sft.max_steps=1",
        "sft.output_dir=" + dir.resolve("sft"));
    assertRefusedWithoutSparkJobs(() -> new TrainingStage(spark, cfg, SessionSpec.Stage.SFT)
        .run(TrainingStage.Inputs.text(List.of(GenerateJobTest.TRAIN), List.of())));
  }

  @Test
  void evaluateRefusesOnTheDriver() throws Exception {
    // A DPO run folder whose final model has the refused config.
    Path run = dir.resolve("run");
    Files.createDirectories(run);
    Files.writeString(run.resolve("run.json"), "{\"spec\": {\"stage\": \"dpo\", \"dpo\": {\"beta\": 0.1}, "
        + "\"model\": {\"path\": \"builtin:tiny\"}, \"total_steps\": 1}}");
    Files.writeString(run.resolve("metrics.jsonl"), "");
    Files.createDirectories(run.resolve("model"));
    try (var files = Files.list(badModel)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Files.copy(f, run.resolve("model").resolve(f.getFileName()));
      }
    }
    JobConfig cfg = ReferenceFixtures.config(7);
    assertRefusedWithoutSparkJobs(() -> new EvaluateJob(spark, cfg).run(List.of(run.toString()), null, null,
        List.of(GenerateJobTest.HELDOUT), dir.resolve("evaluated").toString()), run.resolve("model"));
  }

  @Test
  void exportRefusesBeforeHashingTheWeights() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelExport.export(
        Storage.local(), badModel.toString(), dir.resolve("export").toString(), "float32", 7));
    assertNamesFileAndKey(e, badModel);
    assertFalse(Files.exists(dir.resolve("export")));
  }

  private static void assertNamesFileAndKey(Exception e, Path folder) {
    String m = e.getMessage();
    assertTrue(m.startsWith(folder.resolve("config.json") + ": rope_scaling.rope_type: \"yarn\" is not supported"),
        m);
    assertFalse(m.contains("\n"), "one line: " + m);
  }

  /** Runs {@code job}, expects the config error, and asserts that no Spark job started meanwhile. */
  private static void assertRefusedWithoutSparkJobs(Runnable job) {
    assertRefusedWithoutSparkJobs(job, badModel);
  }

  private static void assertRefusedWithoutSparkJobs(Runnable job, Path folder) {
    SparkContext sc = spark.sparkContext();
    JobStarts starts = new JobStarts();
    sc.addSparkListener(starts);
    try {
      // Events reach listeners in order: once a marker job's start arrives, every earlier job's has.
      starts.awaitMarker(sc, "before");
      starts.descriptions.clear();
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, job::run);
      assertNamesFileAndKey(e, folder);
      String after = starts.awaitMarker(sc, "after");
      assertEquals(List.of(after), starts.descriptions, "Spark jobs started before the config was refused");
    } finally {
      sc.removeSparkListener(starts);
    }
  }

  private static final class JobStarts extends SparkListener {
    final List<String> descriptions = Collections.synchronizedList(new ArrayList<>());

    @Override
    public void onJobStart(SparkListenerJobStart event) {
      String d = event.properties() == null ? null : event.properties().getProperty("spark.job.description");
      descriptions.add(String.valueOf(d));
    }

    String awaitMarker(SparkContext sc, String name) {
      String marker = "marker " + name + " " + UUID.randomUUID();
      sc.setJobDescription(marker);
      try {
        JavaSparkContext.fromSparkContext(sc).parallelize(List.of(1), 1).count();
      } finally {
        sc.setJobDescription(null);
      }
      long deadline = System.nanoTime() + 30_000_000_000L;
      while (!descriptions.contains(marker)) {
        if (System.nanoTime() > deadline) {
          throw new AssertionError("the listener never saw " + marker);
        }
        try {
          Thread.sleep(20);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new AssertionError(e);
        }
      }
      return marker;
    }
  }
}
