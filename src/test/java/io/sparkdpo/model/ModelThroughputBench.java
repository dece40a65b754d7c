package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Forward+backward throughput of a ~10M and a ~30M parameter Llama at sequence 256, batch 8 (through
 * {@link SequenceLogProbs}, the path SFT and DPO train with), as achieved model
 * FLOP/s over libtorch's float32 2048x2048 matmul FLOP/s on the same threads. The machine is shared, so each
 * training step is paired with a matmul burst right after it and the ratio is taken per pair (median reported).
 * Run: {@code mvn -B -o -Pbench test -Dtest=ModelThroughputBench}; figures go to docs/benchmarks.md.
 */
@Tag("bench")
public class ModelThroughputBench {
  private static final int BATCH = 8;
  private static final int SEQ = 256;
  private static final int PROMPT = 64;
  private static final int ROUNDS = Integer.getInteger("bench.rounds", 8);

  @Test
  void reportsModelFlopsAsAFractionOfMatmulFlops() {
    Engine.getEngine("PyTorch");
    System.out.printf(Locale.ROOT, "libtorch threads: intra-op %d, inter-op %d; fused ops: %s%n",
        JniUtils.getNumThreads(), JniUtils.getNumInteropThreads(), FusedOps.available());
    double small = run("~10M", ModelConfig.llama(4096, 384, 1024, 6, 6, 6, true), true);
    double medium = run("~30M", ModelConfig.llama(4096, 512, 1408, 10, 8, 8, true), true);
    if (Boolean.getBoolean("bench.explicit")) {
      run("~10M explicit ops", ModelConfig.llama(4096, 384, 1024, 6, 6, 6, true), false);
    }
    assertTrue(small > 0 && medium > 0);
  }

  /** Parameters that take part in matmuls: all but the norms and the input embedding lookup (a tied head counts). */
  public static long matmulParams(ModelConfig c) {
    long norms = (2L * c.numHiddenLayers() + 1) * c.hiddenSize();
    long inputEmbedding = c.tieWordEmbeddings() ? 0 : (long) c.vocabSize() * c.hiddenSize();
    return c.numParameters() - norms - inputEmbedding;
  }

  /** 6 x matmul params (forward 2, backward 4) + attention 12 x layers x heads x head_dim x seq, per token. */
  static double flopsPerToken(ModelConfig c) {
    return 6.0 * matmulParams(c) + 12.0 * c.numHiddenLayers() * c.numAttentionHeads() * c.headDim() * SEQ;
  }

  private static double run(String label, ModelConfig c, boolean fused) {
    try (CausalLM model = CausalLM.create(c, Device.cpu(), 7);
        NDManager root = NDManager.newBaseManager();
        NDManager mm = NDManager.newBaseManager()) {
      model.useFusedOps(fused);
      Random random = new Random(1);
      int[][] ids = new int[BATCH][SEQ];
      for (int[] row : ids) {
        for (int t = 0; t < SEQ; t++) {
          row[t] = random.nextInt(c.vocabSize());
        }
      }
      NDArray a = mm.randomNormal(new Shape(2048, 2048));
      NDArray b = mm.randomNormal(new Shape(2048, 2048));
      step(model, root, ids);
      matmul(a, b, 2);
      double modelFlops = flopsPerToken(c) * BATCH * SEQ;
      double[] ratios = new double[ROUNDS];
      double[] stepSeconds = new double[ROUNDS];
      double[] matmulRates = new double[ROUNDS];
      for (int r = 0; r < ROUNDS; r++) {
        stepSeconds[r] = step(model, root, ids);
        matmulRates[r] = matmul(a, b, 6);
        ratios[r] = modelFlops / stepSeconds[r] / matmulRates[r];
      }
      double ratio = median(ratios);
      double seconds = median(stepSeconds);
      System.out.printf(Locale.ROOT, "%s: params %,d (matmul params %,d), %.3f s/step, %.0f tokens/s, "
              + "model %.1f GFLOP/s, matmul %.1f GFLOP/s, ratio median %.3f (per round %s)%n",
          label, c.numParameters(), matmulParams(c), seconds, BATCH * SEQ / seconds, modelFlops / seconds / 1e9,
          median(matmulRates) / 1e9, ratio, Arrays.toString(Arrays.stream(ratios)
              .map(x -> Math.round(x * 1000) / 1000.0).toArray()));
      return ratio;
    }
  }

  /** One training step as SFT/DPO run it: response log-probs of (64-token prompt, 192-token response) rows. */
  private static double step(CausalLM model, NDManager root, int[][] ids) {
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    for (int[] row : ids) {
      prompts.add(Arrays.copyOfRange(row, 0, PROMPT));
      responses.add(Arrays.copyOfRange(row, PROMPT, SEQ));
    }
    long start = System.nanoTime();
    try (NDManager step = root.newSubManager();
        GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      SequenceLogProbs.Batch batch = new SequenceLogProbs(model).compute(step, prompts, responses, true);
      collector.backward(batch.mean().mean().neg());
    }
    return (System.nanoTime() - start) / 1e9;
  }

  /** FLOP/s of {@code n} 2048x2048 float32 matmuls. */
  public static double matmul(NDArray a, NDArray b, int n) {
    long start = System.nanoTime();
    for (int i = 0; i < n; i++) {
      a.matMul(b).close();
    }
    return n * 2.0 * 2048 * 2048 * 2048 / ((System.nanoTime() - start) / 1e9);
  }

  public static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
}
