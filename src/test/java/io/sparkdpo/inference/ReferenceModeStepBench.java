package io.sparkdpo.inference;

import static io.sparkdpo.model.ModelThroughputBench.median;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.testing.SharedSpark;
import io.sparkdpo.train.GradientReducer;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.PreparedData;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.TrainingSession;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What precomputing the reference log-probs saves per DPO step: the same training step (same model, same batch of 8
 * pairs, one micro-batch) with the reference model run in the loop (policy forward + backward, plus a no-grad
 * reference forward of the same 2B sequences) and with the reference stage's stored log-probs (policy forward +
 * backward only). Two {@link TrainingSession}s over the same shard (same name, same shuffle, so step s is the same
 * batch in both, checked by their losses) take turns step by step, the order alternating, so both see the same
 * spells of load; the ratio is taken per step and the median reported. Theory: backward costs about twice a forward,
 * so precomputed / in-loop = 3F / (3F + F) = 0.75 (plus the optimizer step on both sides).
 * Run: {@code mvn -B -o -Pbench test -Dtest=ReferenceModeStepBench} ({@code -Dbench.steps=N}, default 16 measured
 * after 2 warm-up steps); figures in docs/benchmarks.md.
 */
@Tag("bench")
class ReferenceModeStepBench {
  private static final int STEPS = Integer.getInteger("bench.steps", 16);
  private static final int WARM_UP = 2;

  @TempDir
  Path dir;

  @Test
  void precomputedReferenceStepAgainstInLoopReferenceStepOnTheSameBatch() throws IOException {
    SparkSession spark = SharedSpark.get();
    Engine.getEngine("PyTorch");
    System.out.printf(Locale.ROOT, "libtorch intra-op threads %d; load average at start: %s%n",
        JniUtils.getNumThreads(), loadAverage());
    Path prepared = dir.resolve("prepared");
    new PrepareJob(spark, ConfigLoader.load(null, List.of("prepare.tokenizer=builtin", "prepare.num_shards=1",
        "prepare.eval_fraction=0.05")), 1).run(List.of("sample-data/preferences/hh-sample.jsonl"), prepared.toString());

    ModelConfig medium = ModelConfig.llama(4096, 384, 1024, 6, 6, 6, true);
    Path mediumDir = dir.resolve("llama-10m");
    try (CausalLM m = CausalLM.create(medium, Device.cpu(), 7)) {
      m.save(mediumDir.toString(), Storage.local(), DataType.FLOAT32);
    }
    double tiny = run(spark, prepared, CausalLM.BUILTIN_TINY, "builtin:tiny (4.0M)");
    double llama = run(spark, prepared, mediumDir.toString(), "Llama ~10M (12.2M)");
    System.out.printf(Locale.ROOT, "load average at end: %s%n", loadAverage());
    assertTrue(tiny > 0 && llama > 0);
  }

  private double run(SparkSession spark, Path prepared, String model, String label) {
    Path referenced = dir.resolve("referenced-" + Math.abs(model.hashCode()));
    new ReferenceJob(spark, config(model, "precomputed")).run(prepared.toString(), referenced.toString());
    int total = WARM_UP + STEPS;
    double[] inLoop = new double[STEPS];
    double[] precomputed = new double[STEPS];
    double[] ratio = new double[STEPS];
    double worstLoss = 0;
    try (TrainingSession<?> a = open(config(model, "in_loop"), prepared, total);
        TrainingSession<?> b = open(config(model, "precomputed"), referenced, total)) {
      TrainingSession<?>[] sessions = {a, b};
      for (int s = 1; s <= total; s++) {
        TrainingSession.Outcome[] outcome = new TrainingSession.Outcome[2];
        double[] seconds = new double[2];
        for (int k : s % 2 == 0 ? new int[] {0, 1} : new int[] {1, 0}) { // alternate which goes first
          long t0 = System.nanoTime();
          outcome[k] = sessions[k].step(s);
          seconds[k] = (System.nanoTime() - t0) / 1e9;
        }
        TrainingSession.Outcome oa = outcome[0];
        TrainingSession.Outcome ob = outcome[1];
        double ta = seconds[0];
        double tb = seconds[1];
        assertEquals(oa.exampleIds(), ob.exampleIds(), "step " + s + " trains the same pairs");
        double la = oa.metrics().get(MetricNames.LOSS);
        double lb = ob.metrics().get(MetricNames.LOSS);
        worstLoss = Math.max(worstLoss, Math.abs(la - lb));
        if (s > WARM_UP) {
          inLoop[s - WARM_UP - 1] = ta;
          precomputed[s - WARM_UP - 1] = tb;
          ratio[s - WARM_UP - 1] = tb / ta;
        }
      }
    }
    assertTrue(worstLoss < 1e-4, "the sessions trained different batches: losses differ by " + worstLoss);
    double[] sorted = ratio.clone();
    java.util.Arrays.sort(sorted);
    System.out.printf(Locale.ROOT, "%s, batch 8 pairs, %d steps after %d warm-up: in-loop %.3f s/step, precomputed "
            + "%.3f s/step (medians); precomputed / in-loop per step: median %.3f (range %.3f-%.3f); losses agree "
            + "within %.1e%n", label, STEPS, WARM_UP, median(inLoop), median(precomputed), median(ratio), sorted[0],
        sorted[sorted.length - 1], worstLoss);
    return median(ratio);
  }

  /** One micro-batch of 8 pairs per step; a small learning rate keeps the two sessions' parameters together. */
  private static JobConfig config(String model, String mode) {
    return ConfigLoader.load(null, List.of("model.path=" + model, "train.per_device_train_batch_size=8",
        "train.gradient_accumulation_steps=1", "train.learning_rate=1e-5", "train.warmup_steps=0",
        "train.reference_mode=" + mode));
  }

  private static TrainingSession<?> open(JobConfig cfg, Path data, long totalSteps) {
    PreparedData d = PreparedData.open(Storage.local(), data.toString());
    SessionSpec spec = SessionSpec.dpo(cfg.model(), cfg.train(), cfg.model().path(), totalSteps, d.trainRows());
    return TrainingSession.open(spec, Storage.local(), CausalLM.device("cpu"), d.trainFiles(), d.evalFiles(),
        GradientReducer.SINGLE, Optional.empty());
  }

  private static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).trim();
    } catch (IOException e) {
      return "unknown";
    }
  }
}
