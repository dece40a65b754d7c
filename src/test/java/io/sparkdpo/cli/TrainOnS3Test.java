package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.S3Settings;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.TrainingFixtures;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A training run whose run folder is on S3 (s3a): checkpoints, metrics, the resume after a failure, the model. */
class TrainOnS3Test {
  @TempDir
  Path dir;

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void checkpointsMetricsAndTheModelGoToS3AndAFailedAttemptResumesFromThere() throws Exception {
    String model = TrainingFixtures.writeModel(dir.resolve("model"), TrainingFixtures.SMALL, 3);
    List<PreparedPair> pairs = TrainingFixtures.pairs("s3", 12, TrainingFixtures.SMALL.vocabSize(), 5);
    String data = TrainingFixtures.writePrepared(dir.resolve("data"), List.of(pairs), pairs.subList(0, 2), null);
    // A bucket of its own: Hadoop caches one S3A file system per bucket and JVM, with the endpoint it was made with.
    try (S3MockServer s3 = S3MockServer.start("train-bucket", dir.resolve("s3"), Duration.ofSeconds(90))) {
      // The command's own session must carry the s3a settings to its tasks (spark.hadoop.*): no shared session.
      stopSessions();
      try {
        PrepareCommandTest.Run r = PrepareCommandTest.runWithoutSharedSession("train", "--data", data, "--model",
            model, "--output", "s3a://train-bucket/run", "--max-steps", "4", "--set", "spark.master=local[2]",
            "--set", "train.reference_mode=in_loop", "--set", "train.save_steps=2",
            "--set", "train.per_device_train_batch_size=2", "--set", "train.logging_steps=1",
            "--set", "train.fault_injection.kind=exception", "--set", "train.fault_injection.step=3",
            "--set", "storage.s3.endpoint=" + s3.endpoint(), "--set", "storage.s3.region=us-east-1",
            "--set", "storage.s3.path_style_access=true", "--set", "storage.s3.ssl=false",
            "--set", "storage.s3.access_key=test", "--set", "storage.s3.secret_key=test");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("train: 4 steps done in 2 attempt(s); model in s3a://train-bucket/run/model"),
            r.out());
      } finally {
        stopSessions();
      }
      Storage storage = new Storage(S3aSettings.hadoopConfiguration(new S3Settings(s3.endpoint(), "us-east-1", true,
          false, "test", "test", null)));
      CheckpointStore store = new CheckpointStore(storage, "s3a://train-bucket/run", null);
      assertEquals(List.of(2L, 4L), store.committedSteps());
      assertEquals(4, store.latestValid().orElseThrow().step(), "every file matches its sha256");
      List<java.util.Map<String, Object>> metrics = MetricsLog.readAll(storage, "s3a://train-bucket/run");
      assertEquals(4, metrics.stream().filter(m -> m.containsKey("loss")).count(), "steps 1-4 logged");
      assertTrue(metrics.get(metrics.size() - 1).containsKey("eval/rewards/accuracies"), "evaluation at the end");
      assertTrue(storage.exists("s3a://train-bucket/run/model/model.safetensors"));
      assertTrue(storage.exists("s3a://train-bucket/run/faults/rank-0-step-3-exception.fired"));
    }
  }

  private static void stopSessions() {
    SparkSession.getActiveSession().foreach(s -> {
      s.stop();
      return null;
    });
    SparkSession.getDefaultSession().foreach(s -> {
      s.stop();
      return null;
    });
    SparkSession.clearActiveSession();
    SparkSession.clearDefaultSession();
  }
}
