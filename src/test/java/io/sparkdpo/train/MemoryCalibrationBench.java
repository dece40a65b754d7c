package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.ModelFolder;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The memory planner against measured peak memory: each configuration trains {@code bench.steps} (4) DPO (or reward
 * model) steps in
 * a child JVM of its own ({@link MemoryCalibrationChild}: a real {@link TrainingSession} on a model folder and a
 * prepared folder written here, pairs of fixed prompt and response lengths), whose VmHWM is read from /proc. The
 * runtime's own share is measured the same way with a 0.1M-parameter model (baseline) and subtracted; the rest is
 * compared with {@link MemoryPlan#bytesAboveOverhead()} of the same settings. Passes when every configuration is
 * within 15 %.
 *
 * <p>Run: {@code mvn -B -o -Pbench test -Dtest=MemoryCalibrationBench} ({@code -Dbench.configs=a,b} picks
 * configurations by name, {@code -Dbench.steps=N}); figures go to docs/benchmarks.md. The children inherit the
 * environment: {@code MALLOC_MMAP_THRESHOLD_=131072 mvn ...} makes glibc return freed blocks of 128 KiB and more to
 * the system, so that RSS follows the live bytes the planner counts (with glibc's defaults freed activation memory
 * stays resident and is reused imperfectly: see docs/memory.md).
 */
@Tag("bench")
public class MemoryCalibrationBench {
  private static final int STEPS = Integer.getInteger("bench.steps", 4);
  /**
   * Child JVMs: a fixed heap, touched at start, so the Java heap is resident in full from the first moment and the
   * same in every child (else eden's pages count in as allocation sweeps it, more in longer runs).
   */
  private static final List<String> JVM = List.of("-Xms512m", "-Xmx512m", "-XX:+AlwaysPreTouch", "-XX:+UseSerialGC",
      "-Dai.djl.offline=true");

  /** ~34M: vocab 4096, hidden 512, 10 layers, 8 heads, tied. */
  static final ModelConfig M34 = ModelConfig.llama(4096, 512, 1408, 10, 8, 8, true);
  /** ~88M: vocab 8192, hidden 768, 12 layers, 12 query and 4 key/value heads, untied head. */
  static final ModelConfig M88 = ModelConfig.llama(8192, 768, 2048, 12, 12, 4, false);
  /** The baseline: 0.1M parameters, what the runtime costs with a model that costs nothing. */
  static final ModelConfig BASE = ModelConfig.llama(512, 64, 128, 2, 4, 2, true);

  record Config(String name, ModelConfig model, int batch, int prompt, int response, List<String> overrides,
      DataType stored, SessionSpec.Stage stage) {
    Config(String name, ModelConfig model, int batch, int prompt, int response, List<String> overrides) {
      this(name, model, batch, prompt, response, overrides, DataType.FLOAT32);
    }

    Config(String name, ModelConfig model, int batch, int prompt, int response, List<String> overrides,
        DataType stored) {
      this(name, model, batch, prompt, response, overrides, stored, SessionSpec.Stage.DPO);
    }

    /** The config section the stage trains from. */
    String section() {
      return stage == SessionSpec.Stage.REWARD ? "reward" : "train";
    }
  }

  private static final List<String> LORA = List.of("train.peft.type=lora", "train.peft.r=16");

  private static List<String> with(List<String> a, String... more) {
    List<String> all = new ArrayList<>(a);
    all.addAll(List.of(more));
    return all;
  }

  static final List<Config> CONFIGS = List.of(
      new Config("full-34M-b4-s256", M34, 4, 64, 192, List.of()),
      new Config("full-34M-b2-s512", M34, 2, 128, 384, List.of()),
      new Config("full-88M-b2-s256-inloop", M88, 2, 64, 192, List.of("train.reference_mode=in_loop")),
      new Config("full-88M-b4-s128", M88, 4, 32, 96, List.of()),
      new Config("lora-34M-b4-s256", M34, 4, 64, 192, LORA),
      new Config("lora-ckpt-34M-b4-s256", M34, 4, 64, 192, with(LORA, "train.gradient_checkpointing=true")),
      new Config("lora-88M-b2-s256-inloop", M88, 2, 64, 192, with(LORA, "train.reference_mode=in_loop")),
      new Config("lora-ckpt-88M-b4-s256", M88, 4, 64, 192, with(LORA, "train.gradient_checkpointing=true")),
      new Config("lora-bf16-88M-b2-s256", M88, 2, 64, 192, LORA, DataType.BFLOAT16),
      new Config("full-ckpt-34M-b4-s256", M34, 4, 64, 192, List.of("train.gradient_checkpointing=true")),
      new Config("full-bf16mixed-34M-b4-s256", M34, 4, 64, 192, List.of("train.mixed_precision=bf16")),
      // Reward models (spark-dpo reward): the same decoders with a score head, no reference, no logits.
      new Config("reward-34M-b4-s256", M34, 4, 64, 192, List.of(), DataType.FLOAT32, SessionSpec.Stage.REWARD),
      new Config("reward-lora-88M-b2-s256", M88, 2, 64, 192, List.of("reward.peft.type=lora", "reward.peft.r=16"),
          DataType.FLOAT32, SessionSpec.Stage.REWARD));

  @TempDir
  Path tmp;

  @Test
  void plannedPeakMemoryIsWithin15PercentOfTheMeasuredPeak() throws Exception {
    List<String> pick = System.getProperty("bench.configs") == null ? null
        : Arrays.asList(System.getProperty("bench.configs").split(","));
    System.out.println("MALLOC_MMAP_THRESHOLD_=" + System.getenv("MALLOC_MMAP_THRESHOLD_") + " (inherited by the children)");
    Measured base = run(new Config("baseline", BASE, 1, 8, 8, List.of()));
    long baseline = base.peakBytes() - base.plan().bytesAboveOverhead();
    System.out.printf(Locale.ROOT, "baseline (%,d params): VmHWM %.1f MB, planned above the runtime %.1f MB -> "
        + "runtime %.1f MB (planner constant %.1f MB)%n", BASE.numParameters(), mb(base.peakBytes()),
        mb(base.plan().bytesAboveOverhead()), mb(baseline), mb(MemoryPlanner.CPU_OVERHEAD_BYTES));
    List<String> failures = new ArrayList<>();
    for (Config c : CONFIGS) {
      if (pick != null && !pick.contains(c.name())) {
        continue;
      }
      Measured m = run(c);
      long measured = m.peakBytes() - baseline;
      long planned = m.plan().bytesAboveOverhead();
      double error = (double) (planned - measured) / measured;
      System.out.printf(Locale.ROOT, "%s (%,d params): VmHWM %.1f MB (after open %.1f MB, per step %s), above the "
              + "runtime %.1f MB; planned %.1f MB above the runtime (total %.1f MB, peak phase %s): %+.1f %%; "
              + "s/step %s%n",
          c.name(), c.model().numParameters(), mb(m.peakBytes()), mb(m.hwm()[0]), Arrays.toString(
              Arrays.stream(m.hwm()).skip(1).mapToObj(b -> String.format(Locale.ROOT, "%.0f", mb(b))).toArray()),
          mb(measured), mb(planned), mb(m.plan().totalBytes()), m.plan().peakPhase(), 100 * error, m.seconds());
      for (MemoryPlan.Item i : m.plan().items()) {
        System.out.printf(Locale.ROOT, "    %-18s %9.1f MB  %s%n", i.key(), mb(i.bytes()), i.how());
      }
      for (MemoryPlan.Phase p : m.plan().phases()) {
        System.out.printf(Locale.ROOT, "    phase %-20s %9.1f MB%n", p.name(), mb(p.bytes()));
      }
      if (Math.abs(error) > 0.15) {
        failures.add(c.name() + String.format(Locale.ROOT, " %+.1f %%", 100 * error));
      }
    }
    assertTrue(failures.isEmpty(), "planned peak off by more than 15 %: " + failures);
  }

  record Measured(long[] hwm, String seconds, MemoryPlan plan) {
    long peakBytes() {
      return Arrays.stream(hwm).max().orElseThrow();
    }
  }

  private Measured run(Config c) throws Exception {
    Path dir = Files.createDirectories(tmp.resolve(c.name()));
    String model = dir.resolve("model").toString();
    try (CausalLM m = CausalLM.create(c.model(), CausalLM.device("cpu"), 7)) {
      m.save(model, Storage.local(), c.stored());
    }
    int pairs = c.batch() * STEPS;
    List<PreparedPair> train = pairs(c, pairs, 11);
    String data = TrainingFixtures.writePrepared(dir.resolve("data"), List.of(train), pairs(c, 2, 13), null);
    List<String> overrides = new ArrayList<>(List.of("model.path=" + model,
        "prepare.max_length=" + (c.prompt() + c.response()), "prepare.max_prompt_length=" + c.prompt(),
        c.section() + ".per_device_train_batch_size=" + c.batch(), c.section() + ".gradient_accumulation_steps=1",
        c.section() + ".max_steps=" + STEPS, c.section() + ".learning_rate=1e-5"));
    overrides.addAll(c.overrides());
    JobConfig cfg = ConfigLoader.load(null, overrides);
    // The folder's config.json, as plan-memory reads it (its torch_dtype is the stored dtype).
    MemoryPlan plan = MemoryPlanner.plan(MemoryPlanner.jobOf(cfg, ModelFolder.readConfig(Storage.local(), model), 1,
        c.response(), c.stage()));

    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(JVM);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(MemoryCalibrationChild.class.getName());
    command.add(data);
    command.add(Integer.toString(STEPS));
    command.add(c.section());
    command.addAll(overrides);
    Path err = dir.resolve("child.err");
    Process p = new ProcessBuilder(command).redirectError(err.toFile()).start();
    long[] hwm = null;
    String seconds = "";
    try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = out.readLine(); line != null; line = out.readLine()) {
        if (line.startsWith("vmhwm-kb ")) {
          hwm = Arrays.stream(line.substring(9).trim().split(" ")).mapToLong(k -> Long.parseLong(k) << 10).toArray();
        } else if (line.startsWith("step-seconds")) {
          seconds = line.substring(12).trim();
        }
      }
    }
    if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0 || hwm == null) {
      p.destroyForcibly();
      List<String> lines = Files.readAllLines(err);
      throw new IllegalStateException(c.name() + ": child failed; stderr tail: "
          + String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size())));
    }
    return new Measured(hwm, seconds, plan);
  }

  /** Pairs whose prompt and both responses have exactly the configured lengths (every batch padded alike). */
  private static List<PreparedPair> pairs(Config c, int count, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    int vocab = c.model().vocabSize();
    List<PreparedPair> out = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int[] prompt = random.ints(c.prompt(), 2, vocab).toArray();
      int[] chosen = random.ints(c.response(), 2, vocab).toArray();
      int[] rejected = random.ints(c.response(), 2, vocab).toArray();
      out.add(TrainingFixtures.withReference(new PreparedPair("p-" + seed + "-" + i, "file:/synthetic.jsonl", i + 1,
          "p", "c", "r", prompt, chosen, rejected, prompt.length, chosen.length, rejected.length, false, null, null),
          -1.0 * c.response(), -1.1 * c.response()));
    }
    return out;
  }

  private static double mb(long bytes) {
    return bytes / (double) (1 << 20);
  }
}
