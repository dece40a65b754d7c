package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.ModelFolder;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.LocalClusterSpark;
import io.sparkdpo.testing.ProcStatus;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.TrainingFixtures;
import io.sparkdpo.train.TrainingSession;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 12's proof at size: a full fine-tune (float32 master weights, gradients and AdamW moments: 16 bytes per
 * parameter per rank) of a checkpoint with the published shapes of Qwen2.5-0.5B (494M parameters, q/k/v bias, tied,
 * vocabulary 151,936; random weights from {@code tools/published/write_checkpoint.py}), DPO with the frozen reference
 * in the checkpoint's bf16 in the loop, on {@code local-cluster[2,...]}: two executor JVMs, one rank each, gradients
 * all-reduced over the TCP ring in 25 MiB buckets, a checkpoint (model + optimizer) written mid-run. The data is the
 * HH sample prepared with the model folder's own tokenizer. Measured: seconds per step, all-reduced bytes, and each
 * rank's peak resident memory (VmHWM of the executor process, sampled from the driver every second).
 *
 * <p>Not a timed test: it needs the checkpoint outside the repository (GBs) and about 20 GB of memory. Run:
 * <pre>
 *   M=/work/published-ckpt/qwen2.5-0.5b; O=/work/published-out
 *   /usr/bin/python3 tools/published/write_checkpoint.py --model qwen2.5-0.5b --out $M --max-shard-size 400MB
 *   head -48 sample-data/preferences/hh-sample.jsonl > $O/hh-48.jsonl
 *   bin/spark-dpo prepare --input $O/hh-48.jsonl --output $O/qwen-prepared2 --set model.path=$M \
 *       --set prepare.max_length=128 --set prepare.max_prompt_length=64 --set prepare.num_shards=2
 *   bin/spark-dpo reference --data $O/qwen-prepared2 --model $M --set model.path=$M --set reference.batch_tokens=1024
 *   mvn -B -o -Pbench test -Dtest=PublishedSizeTrainingBench -Dpublished.model=$M \
 *       -Dpublished.data=$O/qwen-prepared2-referenced
 * </pre>
 * Figures in docs/benchmarks.md ("Full fine-tune at published size, W=2").
 */
@Tag("bench")
class PublishedSizeTrainingBench {
  private static final String MODEL = System.getProperty("published.model", "/work/published-ckpt/qwen2.5-0.5b");
  private static final String DATA = System.getProperty("published.data",
      "/work/published-out/qwen-prepared2-referenced");
  private static final int STEPS = Integer.getInteger("bench.steps", 4);
  private static final int EXECUTOR_HEAP_MB = Integer.getInteger("bench.executor.mb", 2048);
  /**
   * More settings, {@code ;}-separated {@code key=value}, after the defaults below (so they win). Issue 13's proof:
   * {@code train.reference_mode=in_loop;train.peft.type=lora;train.peft.r=16;train.peft.alpha=32;model.dtype=bfloat16}
   * on the Llama-3.2-1B shape with the data prepared (not referenced) by its tokenizer.
   */
  private static final String SETTINGS = System.getProperty("bench.set", "");

  @TempDir
  Path tmp;

  @Test
  void fullFineTuneOfAPublishedShapeOnTwoExecutors() throws IOException {
    assertTrue(Files.isRegularFile(Path.of(MODEL, ModelFolder.CONFIG)), MODEL + " holds no checkpoint: write it "
        + "with tools/published/write_checkpoint.py (see this class's comment)");
    ModelConfig config = ModelFolder.readConfig(Storage.local(), MODEL);
    assertTrue(Files.isRegularFile(Path.of(DATA, "manifest.json")), DATA + " is not a referenced folder (see this "
        + "class's comment)");
    // Fewer malloc arenas: freed activations and optimizer temporaries go back to the few arenas in use.
    Map<String, String> conf = new java.util.HashMap<>(Map.of("spark.executorEnv.OMP_WAIT_POLICY", "PASSIVE",
        "spark.executorEnv.MALLOC_ARENA_MAX", "2"));
    // -Dbench.mmap.threshold=131072: glibc hands freed blocks above it back to the kernel (docs/memory.md).
    String threshold = System.getProperty("bench.mmap.threshold");
    if (threshold != null) {
      conf.put("spark.executorEnv.MALLOC_MMAP_THRESHOLD_", threshold);
    }
    try (LocalClusterSpark cluster = LocalClusterSpark.start(2, 1, EXECUTOR_HEAP_MB, conf)) {
      String data = DATA;

      Map<Long, Long> peakKb = new ConcurrentHashMap<>();
      ScheduledExecutorService sampler = Executors.newSingleThreadScheduledExecutor();
      sampler.scheduleAtFixedRate(
          () -> executorPids().forEach(pid -> peakKb.merge(pid, ProcStatus.of(pid, "VmHWM"), Math::max)),
          0, 1, TimeUnit.SECONDS);
      long start = System.nanoTime();
      TrainingStage.Result r;
      try {
        List<String> settings = new ArrayList<>(List.of("model.path=" + MODEL, "train.reference_mode=precomputed",
            "train.workers=2", "train.per_device_train_batch_size=1", "train.max_steps=" + STEPS,
            "train.logging_steps=1", "train.eval_steps=0", "train.save_steps=" + (STEPS / 2),
            "train.save_total_limit=1", "train.learning_rate=1e-6", "train.checksum_steps=1",
            "train.output_dir=" + tmp.resolve("run")));
        for (String kv : SETTINGS.split(";")) {
          if (!kv.isBlank()) {
            settings.add(kv.trim());
          }
        }
        JobConfig cfg = TrainingFixtures.config(settings.toArray(String[]::new));
        r = new TrainingStage(cluster.session(), cfg, SessionSpec.Stage.DPO)
            .withProgress(new SyntheticRunSpecs.CapturedProgress()).run(TrainingStage.Inputs.prepared(data));
      } finally {
        sampler.shutdownNow();
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      executorPids().forEach(pid -> peakKb.merge(pid, ProcStatus.of(pid, "VmHWM"), Math::max));

      assertEquals(1, r.outcome().attempts(), r.outcome().failures().toString());
      assertEquals(STEPS, r.steps());
      TreeSet<Long> pids = new TreeSet<>();
      r.outcome().reports().forEach(w -> pids.add(w.pid()));
      assertEquals(2, pids.size(), "one rank per executor JVM");
      Map<Long, Double> losses = SyntheticRunSpecs.losses(r.runDir());
      assertEquals(Math.log(2), losses.get(1L), 1e-6, "step 1 starts at the reference (float32 both, or LoRA's B = 0 "
          + "against the base): loss ln 2");
      Map<String, Double> last = lastMetrics(r.runDir());
      List<String> ranks = new ArrayList<>();
      for (var w : r.outcome().reports()) {
        ranks.add(String.format(Locale.ROOT, "rank %d (pid %d): peak RSS %.2f GB", w.rank(), w.pid(),
            peakKb.getOrDefault(w.pid(), 0L) / 1e6));
      }
      System.out.printf(Locale.ROOT, "%s: %,d parameters (%s), settings [%s], %d steps at W=2 in %.0f s (stage incl. "
          + "loading and %d checkpoint(s)); losses %s; %s; all-reduced %,.0f bytes per step per rank (full fine-tune: "
          + "%,d); last step %.1f s, %.1f tokens/s (both ranks)%n", MODEL, config.numParameters(), config.torchDtype(),
          SETTINGS, STEPS, seconds, 2, losses, String.join("; ", ranks), last.get(TrainingSession.ALLREDUCE_BYTES),
          4L * config.numParameters(), last.get(TrainingSession.STEP_SECONDS), last.get(MetricNames.TOKENS_PER_SECOND));
    }
  }

  /** The numeric metrics of the last logged training step. */
  private static Map<String, Double> lastMetrics(String runDir) {
    Map<String, Double> last = new java.util.HashMap<>();
    for (Map<String, Object> row : MetricsLog.readAll(Storage.local(), runDir)) {
      if (row.containsKey(TrainingSession.STEP_SECONDS)) {
        last.clear();
        row.forEach((k, v) -> {
          if (v instanceof Number n) {
            last.put(k, n.doubleValue());
          }
        });
      }
    }
    return last;
  }

  /**
   * The executor JVMs on this machine (CoarseGrainedExecutorBackend), from /proc: {@code ProcessHandle.info()} gives
   * no command line for them (it is longer than the JDK reads).
   */
  private static List<Long> executorPids() {
    List<Long> pids = new ArrayList<>();
    try (var dirs = Files.list(Path.of("/proc"))) {
      dirs.filter(d -> d.getFileName().toString().chars().allMatch(Character::isDigit)).forEach(d -> {
        try {
          if (new String(Files.readAllBytes(d.resolve("cmdline"))).contains("CoarseGrainedExecutorBackend")) {
            pids.add(Long.parseLong(d.getFileName().toString()));
          }
        } catch (IOException | RuntimeException e) {
          // the process ended while listing
        }
      });
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return pids;
  }
}
