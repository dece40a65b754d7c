package io.sparkdpo.distributed;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.testing.LocalClusterSpark;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.TrainingFixtures;
import io.sparkdpo.train.TrainingSession;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Share of a real DPO training step spent in the gradient all-reduce, W = 2 on {@code local-cluster[2,1,...]}: each
 * rank an executor JVM with one libtorch thread (the machine has two cores), a ~31M-parameter Llama config, in-loop
 * reference, 4 pairs of ~120 tokens per rank and step. Each rank times its step and the part inside the reducer
 * ({@code perf/step_seconds}, {@code perf/allreduce_seconds}: 2 x 126 MB over loopback plus waiting for the peer);
 * the metrics log holds their means over ranks. Not a timed test: prints the ratio for docs/benchmarks.md.
 *
 * <p>Run: {@code mvn -B -o -Pbench test -Dtest=TrainingStepCommunicationBench}
 */
@Tag("bench")
class TrainingStepCommunicationBench {
  /** hidden 512, 10 layers, 8 heads (4 kv), SwiGLU 1408, vocab 4096 tied: 31.6M parameters. */
  static final ModelConfig CONFIG = ModelConfig.llama(4096, 512, 1408, 10, 8, 4, true);
  private static final int STEPS = Integer.getInteger("bench.steps", 12);

  @TempDir
  Path tmp;

  @Test
  @Timeout(value = 30, unit = TimeUnit.MINUTES)
  void communicationShareOfATrainingStepAtTwoWorkers() throws Exception {
    String model = TrainingFixtures.writeModel(tmp.resolve("model"), CONFIG, 3);
    List<List<PreparedPair>> shards = new ArrayList<>();
    for (int s = 0; s < 2; s++) {
      shards.add(longer(TrainingFixtures.pairs("s" + s, 64, CONFIG.vocabSize(), 40 + s)));
    }
    String data = TrainingFixtures.writePrepared(tmp.resolve("data"), shards, shards.get(0).subList(0, 2), null);
    String load = loadAverage();
    try (LocalClusterSpark cluster = LocalClusterSpark.start(2, 1, 3072,
        Map.of("spark.executorEnv.OMP_NUM_THREADS", "1"))) {
      JobConfig cfg = TrainingFixtures.config("model.path=" + model, "train.reference_mode=in_loop",
          "train.workers=2", "train.per_device_train_batch_size=4", "train.max_steps=" + STEPS,
          "train.logging_steps=1", "train.eval_steps=0", "train.save_steps=0", "train.checksum_steps=0",
          "train.learning_rate=1e-4", "train.output_dir=" + tmp.resolve("run"));
      TrainingStage.Result r = new TrainingStage(cluster.session(), cfg, SessionSpec.Stage.DPO)
          .withProgress(new SyntheticRunSpecs.CapturedProgress())
          .run(TrainingStage.Inputs.prepared(data));
      List<Double> share = new ArrayList<>();
      double step = 0;
      double comm = 0;
      StringBuilder rows = new StringBuilder();
      for (Map<String, Object> m : MetricsLog.readAll(Storage.local(), r.runDir())) {
        long s = ((Number) m.get("step")).longValue();
        if (!m.containsKey(TrainingSession.STEP_SECONDS) || s <= 2) {
          continue; // the first steps warm up the engine
        }
        double st = ((Number) m.get(TrainingSession.STEP_SECONDS)).doubleValue();
        double ar = ((Number) m.get(TrainingSession.ALLREDUCE_SECONDS)).doubleValue();
        step += st;
        comm += ar;
        share.add(ar / st);
        rows.append(String.format(Locale.ROOT, "| %d | %.3f | %.3f | %.1f %% |%n", s, st, ar, 100 * ar / st));
      }
      Collections.sort(share);
      String report = String.format(Locale.ROOT, "model %.1fM parameters, W=2, %d measured steps, load average %s at "
          + "start and %s at end%n| step | step s | all-reduce s | share |%n|---|---|---|---|%n%s"
          + "total: all-reduce %.2f s of %.2f s = %.1f %% (median step %.1f %%)%n",
          CONFIG.numParameters() / 1e6, share.size(), load, loadAverage(), rows, comm, step, 100 * comm / step,
          100 * share.get(share.size() / 2));
      System.out.println(report);
      Path out = Path.of(System.getProperty("project.build.directory", "target"), "benchmarks");
      Files.createDirectories(out);
      Files.writeString(out.resolve("training-step-communication.md"), report);
    }
  }

  /** Stretches responses so a pair is about 120 tokens (prompt 3-8, each response ~55). */
  private static List<PreparedPair> longer(List<PreparedPair> pairs) {
    List<PreparedPair> out = new ArrayList<>();
    for (PreparedPair p : pairs) {
      int[] c = repeat(p.chosenIds(), 55);
      int[] rj = repeat(p.rejectedIds(), 55);
      out.add(new PreparedPair(p.pairId(), p.sourceFile(), p.sourceRow(), p.promptText(), p.chosenText(),
          p.rejectedText(), p.promptIds(), c, rj, p.promptIds().length, c.length, rj.length, false, null, null));
    }
    return out;
  }

  private static int[] repeat(int[] ids, int length) {
    int[] out = new int[length];
    for (int i = 0; i < length; i++) {
      out[i] = ids[i % ids.length];
    }
    return out;
  }

  private static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
    } catch (java.io.IOException e) {
      return "?";
    }
  }
}
