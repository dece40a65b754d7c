package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Forward+backward throughput of two Llama configurations at sequence 256, batch 8, reported as achieved
 * model FLOP/s over libtorch's float32 2048x2048 matmul FLOP/s measured in the same run on the same threads.
 * Run: {@code mvn -B -o -Pbench test -Dtest=ModelThroughputBench}; figures go to docs/benchmarks.md.
 */
@Tag("bench")
class ModelThroughputBench {
  private static final int BATCH = 8;
  private static final int SEQ = 256;

  @Test
  void reportsModelFlopsAsAFractionOfMatmulFlops() {
    ModelConfig small = ModelConfig.llama(4096, 384, 1024, 6, 6, 2, true);
    ModelConfig medium = ModelConfig.llama(4096, 512, 1408, 10, 8, 4, true);
    Engine.getEngine("PyTorch");
    System.out.printf(Locale.ROOT, "threads intra-op=%d inter-op=%d%n", JniUtils.getNumThreads(),
        JniUtils.getNumInteropThreads());
    double matmulBefore = matmulFlops();
    double[] s = modelFlops(small);
    double[] m = modelFlops(medium);
    double matmulAfter = matmulFlops();
    double matmul = (matmulBefore + matmulAfter) / 2;
    System.out.printf(Locale.ROOT, "matmul 2048x2048 fp32: %.1f GFLOP/s (before %.1f, after %.1f)%n",
        matmul / 1e9, matmulBefore / 1e9, matmulAfter / 1e9);
    report("~10M", small, s, matmul);
    report("~30M", medium, m, matmul);
    assertTrue(s[1] > 0 && m[1] > 0);
  }

  private static void report(String label, ModelConfig c, double[] r, double matmul) {
    System.out.printf(Locale.ROOT,
        "%s: params=%d (matmul params %d) tokens/s=%.0f model GFLOP/s=%.1f ratio=%.3f%n",
        label, c.numParameters(), matmulParams(c), r[0], r[1] / 1e9, r[1] / matmul);
  }

  /** Parameters that take part in matmuls: all but the input embedding lookup (the tied head counts). */
  static long matmulParams(ModelConfig c) {
    long norms = (2L * c.numHiddenLayers() + 1) * c.hiddenSize();
    long inputEmbedding = c.tieWordEmbeddings() ? 0 : (long) c.vocabSize() * c.hiddenSize();
    return c.numParameters() - norms - inputEmbedding;
  }

  /** {tokens/s, model FLOP/s}: 6 x matmul params x tokens + 12 x layers x heads x head_dim x seq per token. */
  private static double[] modelFlops(ModelConfig c) {
    try (CausalLM model = CausalLM.create(c, Device.cpu(), 7); NDManager root = NDManager.newBaseManager()) {
      Random random = new Random(1);
      int[][] ids = new int[BATCH][SEQ];
      for (int[] row : ids) {
        for (int t = 0; t < SEQ; t++) {
          row[t] = random.nextInt(c.vocabSize());
        }
      }
      for (int i = 0; i < 2; i++) {
        step(model, root, ids);
      }
      int steps = 4;
      long start = System.nanoTime();
      for (int i = 0; i < steps; i++) {
        step(model, root, ids);
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      double tokens = (double) steps * BATCH * SEQ;
      double perToken = 6.0 * matmulParams(c)
          + 12.0 * c.numHiddenLayers() * c.numAttentionHeads() * c.headDim() * SEQ;
      System.out.printf(Locale.ROOT, "  %.3f s/step%n", seconds / steps);
      return new double[] {tokens / seconds, perToken * tokens / seconds};
    }
  }

  private static void step(CausalLM model, NDManager root, int[][] ids) {
    try (NDManager step = root.newSubManager();
        GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      NDArray input = step.create(ids);
      NDArray logits = model.logits(input, true);
      NDArray loss = logits.logSoftmax(2).mean().neg();
      collector.backward(loss);
    }
  }

  private static double matmulFlops() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray a = m.randomNormal(new Shape(2048, 2048));
      NDArray b = m.randomNormal(new Shape(2048, 2048));
      for (int i = 0; i < 3; i++) {
        a.matMul(b).close();
      }
      int n = 10;
      long start = System.nanoTime();
      for (int i = 0; i < n; i++) {
        a.matMul(b).close();
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      return n * 2.0 * 2048 * 2048 * 2048 / seconds;
    }
  }
}
