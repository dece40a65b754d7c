package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.SequenceLogProbs;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A full training step (forward, backward, AdamW) of the ~30M Llama of ModelThroughputBench at batch 8 x 256 tokens,
 * in float32 and with {@code mixed_precision: bf16}, alternating on one model in the same run, so both see the same
 * machine load. Reports tokens/s of each and the bf16/float32 ratio per adjacent pair (median).
 * Run: {@code mvn -B -o -Pbench test -Dtest=MixedPrecisionStepBench} ({@code -Dbench.rounds=N}, default 6;
 * {@code -Dbench.compute=float16} for float16, {@code -Dbench.profile=PREFIX} writes libtorch profiler traces of one
 * step of each to PREFIX-float32.json and PREFIX-bfloat16.json); figures go to docs/benchmarks.md.
 */
@Tag("bench")
public class MixedPrecisionStepBench {
  private static final int BATCH = 8;
  private static final int SEQ = 256;
  private static final int PROMPT = 64;
  private static final int ROUNDS = Integer.getInteger("bench.rounds", 6);

  @Test
  void bf16StepAgainstFloat32Step() {
    Engine.getEngine("PyTorch");
    DataType compute = "float16".equals(System.getProperty("bench.compute")) ? DataType.FLOAT16
        : DataType.BFLOAT16;
    ModelConfig c = ModelConfig.llama(4096, 512, 1408, 10, 8, 8, true);
    System.out.printf(Locale.ROOT, "libtorch threads: intra-op %d; params %,d; compute %s%n",
        JniUtils.getNumThreads(), c.numParameters(), compute);
    try (CausalLM model = CausalLM.create(c, Device.cpu(), 7); NDManager root = NDManager.newBaseManager()) {
      LinkedHashMap<String, NDArray> arrays = new LinkedHashMap<>();
      model.parameters().forEach((name, p) -> arrays.put(name, p.getArray()));
      Random random = new Random(1);
      List<int[]> prompts = new ArrayList<>();
      List<int[]> responses = new ArrayList<>();
      for (int b = 0; b < BATCH; b++) {
        int[] row = random.ints(SEQ, 0, c.vocabSize()).toArray();
        prompts.add(Arrays.copyOfRange(row, 0, PROMPT));
        responses.add(Arrays.copyOfRange(row, PROMPT, SEQ));
      }
      try (AdamW adamw = new AdamW(arrays, new AdamW.Hyper(0.9, 0.999, 1e-8, 0.0), AdamW.decaysByDefault());
          GradientAccumulator accumulator = new GradientAccumulator(new ArrayList<>(arrays.values()))) {
        double[] wide = new double[ROUNDS];
        double[] narrow = new double[ROUNDS];
        double[] ratios = new double[ROUNDS];
        for (int r = -1; r < ROUNDS; r++) { // round -1 warms both paths up
          model.computeDtype(DataType.FLOAT32);
          double w = step(model, root, prompts, responses, adamw, accumulator);
          model.computeDtype(compute);
          double n = step(model, root, prompts, responses, adamw, accumulator);
          if (r >= 0) {
            wide[r] = w;
            narrow[r] = n;
            ratios[r] = w / n;
          }
        }
        String profile = System.getProperty("bench.profile");
        if (profile != null) {
          // One more step of each under libtorch's profiler: chrome traces for where the time goes.
          for (DataType d : List.of(DataType.FLOAT32, compute)) {
            model.computeDtype(d);
            JniUtils.startProfile(false, false, false);
            step(model, root, prompts, responses, adamw, accumulator);
            JniUtils.stopProfile(profile + "-" + d.name().toLowerCase(Locale.ROOT) + ".json");
          }
        }
        double tokens = BATCH * SEQ;
        System.out.printf(Locale.ROOT, "float32: %.3f s/step, %.0f tokens/s; %s: %.3f s/step, %.0f tokens/s; "
                + "tokens/s ratio median %.2fx (per round %s)%n",
            median(wide), tokens / median(wide), compute, median(narrow), tokens / median(narrow), median(ratios),
            Arrays.toString(Arrays.stream(ratios).map(x -> Math.round(x * 100) / 100.0).toArray()));
        assertTrue(median(ratios) > 0);
      }
    }
  }

  /** One step as SFT/DPO run it: response log-probs of the batch, backward, AdamW; seconds. */
  private static double step(CausalLM model, NDManager root, List<int[]> prompts, List<int[]> responses,
      AdamW adamw, GradientAccumulator accumulator) {
    long start = System.nanoTime();
    try (NDManager step = root.newSubManager();
        GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      SequenceLogProbs.Batch batch = new SequenceLogProbs(model).compute(step, prompts, responses, true);
      collector.backward(batch.mean().mean().neg());
    }
    adamw.step(accumulator.gradients(), 1e-6);
    accumulator.zero();
    return (System.nanoTime() - start) / 1e9;
  }

  private static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
}
