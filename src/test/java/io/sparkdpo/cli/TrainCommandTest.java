package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.TrainingFixtures;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code spark-dpo train} and {@code sft} end to end on an embedded local Spark, W = 1. */
class TrainCommandTest {
  @TempDir
  Path dir;

  private List<String> trainArgs(String data, String model, Path output) {
    return new ArrayList<>(List.of("train", "--data", data, "--model", model, "--output", output.toString(),
        "--max-steps", "10", "--set", "train.reference_mode=in_loop", "--set", "train.save_steps=5",
        "--set", "train.per_device_train_batch_size=4", "--set", "train.learning_rate=0.002",
        "--set", "train.logging_steps=3", "--set", "train.eval_steps=5", "--set", "spark.master=local[2]"));
  }

  /** The command in a JVM of its own, as bin/spark-dpo runs it; stdout and stderr together. */
  private static PrepareCommandTest.Run runInNewJvm(List<String> args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-opens") || a.startsWith("-Djdk.reflect") || a.startsWith("-Dio.netty")) {
        command.add(a);
      }
    }
    command.addAll(List.of("-Xmx2g", "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"),
        Main.class.getName()));
    command.addAll(args);
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException("spark-dpo " + args + " did not finish within 120 s");
    }
    String text = new String(out, StandardCharsets.UTF_8);
    return new PrepareCommandTest.Run(p.exitValue(), text, text);
  }

  private static Map<Long, Double> losses(Path runDir) {
    Map<Long, Double> out = new TreeMap<>();
    for (Map<String, Object> r : MetricsLog.readAll(Storage.local(), runDir.toString())) {
      if (r.containsKey(MetricNames.LOSS)) {
        out.put(((Number) r.get(MetricNames.STEP)).longValue(), ((Number) r.get(MetricNames.LOSS)).doubleValue());
      }
    }
    return out;
  }

  /** metrics.jsonl without the wall-clock figures, which no two runs share. */
  private static String metricsWithoutTimings(Path runDir) throws IOException {
    StringBuilder out = new StringBuilder();
    for (String line : Files.readAllLines(runDir.resolve(MetricsLog.CONSOLIDATED))) {
      Map<String, Object> r = io.sparkdpo.io.Json.LINES.readValue(line,
          new com.fasterxml.jackson.core.type.TypeReference<java.util.LinkedHashMap<String, Object>>() {});
      r.keySet().removeIf(k -> k.equals(MetricNames.TOKENS_PER_SECOND) || k.startsWith("perf/")
          && k.endsWith("_seconds"));
      out.append(io.sparkdpo.io.Json.LINES.writeValueAsString(r)).append('\n');
    }
    return out.toString();
  }

  @Test
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void aRunStoppedAfterACheckpointAndStartedAgainInANewProcessEndsWithTheBitsOfAStraightRun() throws Exception {
    String model = TrainingFixtures.writeModel(dir.resolve("model"), TrainingFixtures.SMALL, 11);
    List<PreparedPair> pairs = TrainingFixtures.pairs("p", 24, TrainingFixtures.SMALL.vocabSize(), 12);
    String data = TrainingFixtures.writePrepared(dir.resolve("data"), List.of(pairs), pairs.subList(0, 4), null);

    Path straight = dir.resolve("straight");
    PrepareCommandTest.Run s = PrepareCommandTest.run(trainArgs(data, model, straight).toArray(String[]::new));
    assertEquals(0, s.exit(), s.err());
    assertTrue(s.out().contains("train: 10 steps done in 1 attempt(s); model in "), s.out());
    assertTrue(s.out().contains("final evaluation (step 10):  eval/logits/chosen "), s.out());
    assertTrue(s.out().contains("  eval/logps/chosen "), s.out());

    Path resumed = dir.resolve("resumed");
    List<String> stopped = trainArgs(data, model, resumed);
    stopped.addAll(List.of("--set", "train.fault_injection.kind=exception", "--set", "train.fault_injection.step=6",
        "--set", "train.max_attempts=1"));
    PrepareCommandTest.Run first = runInNewJvm(stopped);
    assertEquals(1, first.exit(), first.out());
    assertTrue(first.out().contains("spark-dpo train failed: gave up after 1 attempts (max_attempts): attempt 1 failed "
        + "after step 5: rank 0 at step 6: InjectedFault"), first.out());
    CheckpointStore store = new CheckpointStore(Storage.local(), resumed.toString(), null);
    assertEquals(List.of(5L), store.committedSteps(), "the process stopped after checkpoint 5");

    PrepareCommandTest.Run second = runInNewJvm(stopped);
    assertEquals(0, second.exit(), second.out());
    assertTrue(second.out().contains("replicas verified identical, training after step 5"), second.out());
    assertTrue(second.out().contains("train: 10 steps done in 1 attempt(s)"), second.out());

    assertArrayEquals(Files.readAllBytes(straight.resolve("model/model.safetensors")),
        Files.readAllBytes(resumed.resolve("model/model.safetensors")), "bit-identical parameters");
    // Logged after steps 3, 6, 9 and 10: the window 4..6 spans checkpoint 5 and the stop before step 6.
    Map<Long, Double> lossStraight = losses(straight);
    assertEquals(List.of(3L, 6L, 9L, 10L), List.copyOf(lossStraight.keySet()));
    assertEquals(lossStraight, losses(resumed));
    assertEquals(metricsWithoutTimings(straight), metricsWithoutTimings(resumed), "metrics.jsonl, timings aside");
    assertTrue(metricsWithoutTimings(straight).contains("\"num_tokens\":"), metricsWithoutTimings(straight));

    PrepareCommandTest.Run again = PrepareCommandTest.run(trainArgs(data, model, straight).toArray(String[]::new));
    assertEquals(0, again.exit(), again.err());
    assertTrue(again.out().contains("is up to date (same settings and data, 10 steps done)"), again.out());
    assertEquals(lossStraight, losses(straight), "a finished run trains nothing more");
    List<String> changed = trainArgs(data, model, straight);
    changed.addAll(List.of("--set", "train.beta=0.2"));
    PrepareCommandTest.Run refused = PrepareCommandTest.run(changed.toArray(String[]::new));
    assertEquals(1, refused.exit());
    assertTrue(refused.err().contains("holds a run with other settings (spec.dpo.beta: 0.1 -> 0.2)"), refused.err());
  }

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void sftOnPlainTextWritesAModelFolderThatTrainTakesAsItsModel() throws Exception {
    Path text = dir.resolve("text");
    Files.createDirectories(text);
    Path project = Path.of(System.getProperty("project.basedir", "."));
    Path corpus = project.resolve("sample-data/corpus/moby-dick");
    Files.copy(corpus.resolve("train/chapter-001.txt"), text.resolve("chapter-001.txt"));
    Path prepared = dir.resolve("prepared");
    PrepareCommandTest.Run prep = PrepareCommandTest.run("prepare", "--input",
        project.resolve("sample-data/preferences/trl-sample.jsonl").toString(), "--output", prepared.toString());
    assertEquals(0, prep.exit(), prep.err());

    Path sft = dir.resolve("sft");
    PrepareCommandTest.Run r = PrepareCommandTest.run("sft", "--text", text.toString(), "--eval-text",
        corpus.resolve("heldout/chapter-030.txt").toString(), "--output", sft.toString(), "--max-steps", "3",
        "--set", "sft.block_size=64", "--set", "sft.per_device_train_batch_size=2", "--set", "spark.master=local[2]");
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.out().contains("sft: 3 steps done in 1 attempt(s)"), r.out());
    assertTrue(r.out().contains("eval/loss "), r.out());
    for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
      assertTrue(Files.exists(sft.resolve("model").resolve(f)), f);
    }
    assertTrue(Files.exists(sft.resolve("data/train/shard-00000.bin")));

    Path dpo = dir.resolve("dpo");
    PrepareCommandTest.Run t = PrepareCommandTest.run("train", "--data", prepared.toString(), "--model",
        sft.resolve("model").toString(), "--output", dpo.toString(), "--max-steps", "2",
        "--set", "train.reference_mode=in_loop", "--set", "train.per_device_train_batch_size=2",
        "--set", "spark.master=local[2]");
    assertEquals(0, t.exit(), t.err());
    assertTrue(t.out().contains("train: 2 steps done"), t.out());

    PrepareCommandTest.Run wrongTokenizer = PrepareCommandTest.run("train", "--data", prepared.toString(), "--model",
        TrainingFixtures.writeModel(dir.resolve("other"), TrainingFixtures.SMALL, 1), "--output",
        dir.resolve("never").toString(), "--set", "train.reference_mode=precomputed");
    assertEquals(1, wrongTokenizer.exit());
    assertTrue(wrongTokenizer.err().contains("holds no precomputed reference log-probs"), wrongTokenizer.err());
    assertFalse(Files.exists(dir.resolve("never/checkpoints")));
  }
}
