package io.sparkdpo.distributed;

import io.sparkdpo.io.Storage;
import io.sparkdpo.train.ConsoleProgress;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Run specs and result readers shared by the Spark tests of the synthetic task. */
final class SyntheticRunSpecs {
  /** 20 steps, metrics every step, evaluation every 10, checkpoints every 5, checksums every 4. */
  static final TrainingSchedule SCHEDULE = new TrainingSchedule(20, 1, 10, 5, 4);
  static final RingSettings RING = RingSettings.of(RingOptions.defaults().withChunkBytes(4096)
      .withIoTimeout(Duration.ofSeconds(30)).withConnectTimeout(Duration.ofSeconds(30)));

  private SyntheticRunSpecs() {}

  /** Two training shards of 24 rows and three eval shards of 8 rows under {@code root}; returns both lists. */
  static List<List<String>> writeShards(Path root, SyntheticRegressionTask task) {
    return List.of(SyntheticShards.write(root.resolve("train"), 2, 24, task.inputs, task.outputs, 11),
        SyntheticShards.write(root.resolve("eval"), 3, 8, task.inputs, task.outputs, 12));
  }

  static ShardPlan plan(List<List<String>> shards, int workers) {
    return ShardPlan.of(shards.get(0), shards.get(1), workers);
  }

  static RunSpec spec(Path root, String name, List<List<String>> shards, int workers, FaultPlan faults,
      int maxAttempts) {
    return new RunSpec("synthetic", name, root.resolve(name).toString(), plan(shards, workers), SCHEDULE,
        maxAttempts, null, faults, RING);
  }

  /** Step to the logged training loss, from the run's metrics parts. */
  static Map<Long, Double> losses(String runDir) {
    Map<Long, Double> out = new TreeMap<>();
    for (Map<String, Object> r : MetricsLog.readAll(Storage.local(), runDir)) {
      if (r.containsKey(MetricNames.LOSS)) {
        out.put(((Number) r.get(MetricNames.STEP)).longValue(), ((Number) r.get(MetricNames.LOSS)).doubleValue());
      }
    }
    return out;
  }

  /** A progress bar that prints every update into a buffer. */
  static final class CapturedProgress implements RunMonitor.ProgressFactory {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);

    @Override
    public ConsoleProgress create(String label, long totalSteps, long startStep) {
      return new ConsoleProgress(label, totalSteps, startStep, out, false, System::nanoTime, 0);
    }

    String text() {
      return bytes.toString(StandardCharsets.UTF_8);
    }
  }
}
