package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.io.Json;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Log-probabilities from the LM head on response positions only (logit[target] - logsumexp, chunked) against the
 * way they were computed before: the full [N, L, V] logits, a log-softmax over all of them, a gather and a mask.
 */
class ResponseHeadTest {
  private static final int VOCAB = 211;
  /** Sequences of different prompt lengths (one empty prompt) and response lengths, so right padding varies. */
  private static final List<int[]> PROMPTS = List.of(new int[] {5, 17, 3, 99, 150, 2, 8}, new int[] {40},
      new int[] {7, 7, 7}, new int[] {}, new int[] {201, 33, 12, 190, 4});
  private static final List<int[]> RESPONSES = List.of(new int[] {11, 12, 13}, new int[] {60, 61, 62, 63, 64, 65},
      new int[] {1}, new int[] {88, 89, 90}, new int[] {210, 0});
  private static final List<int[]> REJECTED = List.of(new int[] {9}, new int[] {30, 31}, new int[] {2, 3, 4, 5},
      new int[] {77, 78}, new int[] {100, 101, 102});

  private final int defaultChunk = SequenceLogProbs.HEAD_CHUNK_ROWS;

  @AfterEach
  void restoreChunk() {
    SequenceLogProbs.HEAD_CHUNK_ROWS = defaultChunk;
  }

  /** A random model with sharp next-token distributions (initializer_range 0.3), untied or tied. */
  static CausalLM randomModel(boolean tied, DataType dtype) {
    ModelConfig base = ModelConfig.llama(VOCAB, 32, 48, 2, 4, 2, tied);
    try {
      ObjectNode json = (ObjectNode) Json.MAPPER.readTree(base.toJson());
      json.put("initializer_range", 0.3);
      return CausalLM.create(ModelConfig.fromJson(json.toString(), "test config"), Device.cpu(), 7, dtype);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** Per-sequence sums the old way: full logits, log-softmax over [N, L, V], gather, response mask. */
  static NDArray legacySums(CausalLM model, NDManager scope, List<int[]> prompts, List<int[]> responses,
      boolean training) {
    int n = prompts.size();
    int length = 0;
    for (int i = 0; i < n; i++) {
      length = Math.max(length, prompts.get(i).length + responses.get(i).length);
    }
    int[] ids = new int[n * length];
    long[] targets = new long[n * length];
    float[] mask = new float[n * length];
    for (int i = 0; i < n; i++) {
      int[] p = prompts.get(i);
      int[] r = responses.get(i);
      for (int t = 0; t < p.length + r.length; t++) {
        ids[i * length + t] = t < p.length ? p[t] : r[t - p.length];
      }
      for (int t = 0; t < length - 1; t++) {
        targets[i * length + t] = ids[i * length + t + 1];
        mask[i * length + t] = t + 1 >= p.length && t + 1 < p.length + r.length ? 1f : 0f;
      }
    }
    NDArray logits = model.logits(scope.create(ids, new Shape(n, length)), training);
    NDArray picked = logits.logSoftmax(2).gather(CausalLM.owned(scope.create(targets, new Shape(n, length, 1))), 2)
        .squeeze(2);
    return picked.mul(CausalLM.owned(scope.create(mask, new Shape(n, length)))).sum(new int[] {1});
  }

  private static float[] legacy(CausalLM model, List<int[]> prompts, List<int[]> responses) {
    try (NoGrad ignored = NoGrad.enter(); NDManager scope = NDManager.newBaseManager()) {
      return legacySums(model, scope, prompts, responses, false).toFloatArray();
    }
  }

  private static float[] lean(CausalLM model, List<int[]> prompts, List<int[]> responses) {
    try (NDManager scope = NDManager.newBaseManager()) {
      return new SequenceLogProbs(model).compute(scope, prompts, responses, false).sum().toFloatArray();
    }
  }

  private static void assertClose(float[] expected, float[] actual, double relative) {
    assertEquals(expected.length, actual.length);
    for (int i = 0; i < expected.length; i++) {
      double tolerance = relative * Math.max(1, Math.abs(expected[i]));
      assertEquals(expected[i], actual[i], tolerance, "sequence " + i);
    }
  }

  @Test
  void hiddenStatesThroughTheHeadAreTheLogitsBitForBit() {
    for (DataType dtype : List.of(DataType.FLOAT32, DataType.BFLOAT16)) {
      try (CausalLM model = randomModel(false, dtype); NDManager m = NDManager.newBaseManager()) {
        NDArray ids = m.create(new int[] {3, 1, 4, 1, 5, 9, 2, 6}, new Shape(2, 4));
        float[] logits = model.logits(ids, false).toFloatArray();
        NDArray hidden = model.hiddenStates(ids, false);
        assertEquals(new Shape(2, 4, 32), hidden.getShape());
        NDArray viaHead = model.head(hidden, false);
        assertEquals(DataType.FLOAT32, viaHead.getDataType());
        assertEquals(new Shape(2, 4, VOCAB), viaHead.getShape());
        assertArrayEquals(logits, viaHead.toFloatArray(), dtype.toString());
      }
    }
  }

  @Test
  void sumsMatchTheFullLogSoftmaxInFloat32AndBfloat16WithAndWithoutChunks() {
    for (DataType dtype : List.of(DataType.FLOAT32, DataType.BFLOAT16)) {
      for (boolean tied : new boolean[] {false, true}) {
        try (CausalLM model = randomModel(tied, dtype)) {
          for (boolean fused : new boolean[] {true, false}) { // logsumexp through TorchScript, or explicit ops
            // (the switch also changes the trunk's kernels, which round differently in bf16)
            model.useFusedOps(fused);
            float[] expected = legacy(model, PROMPTS, RESPONSES);
            assertTrue(expected[0] < -1, "a non-trivial log-probability: " + expected[0]);
            SequenceLogProbs.HEAD_CHUNK_ROWS = 1024;
            assertClose(expected, lean(model, PROMPTS, RESPONSES), 2e-6);
            // 14 response positions in chunks of 3 and of 1 (the GEMM may round differently per row count)
            SequenceLogProbs.HEAD_CHUNK_ROWS = 3;
            assertClose(expected, lean(model, PROMPTS, RESPONSES), 2e-6);
            SequenceLogProbs.HEAD_CHUNK_ROWS = 1;
            assertClose(expected, lean(model, PROMPTS, RESPONSES), 2e-6);
          }
        }
      }
    }
  }

  @Test
  void aResponseWithNoPredictedTokenSumsToZeroAsBefore() {
    // An empty prompt leaves a one-token response with no position predicting it: no head rows at all.
    List<int[]> prompts = List.of(new int[] {});
    List<int[]> responses = List.of(new int[] {5});
    try (CausalLM model = randomModel(false, DataType.FLOAT32); NDManager m = NDManager.newBaseManager()) {
      assertArrayEquals(legacy(model, prompts, responses), lean(model, prompts, responses));
      SequenceLogProbs.Batch b = new SequenceLogProbs(model).compute(m, prompts, responses, false);
      assertEquals(0.0, b.sums()[0]);
      assertEquals(1, b.counts()[0]);
    }
  }

  @Test
  void tokenLogProbsMatchTheFullLogSoftmaxPerToken() {
    List<int[]> prompts = List.of(PROMPTS.get(0), PROMPTS.get(1), PROMPTS.get(2), PROMPTS.get(4));
    List<int[]> responses = List.of(RESPONSES.get(0), new int[] {}, RESPONSES.get(2), RESPONSES.get(4));
    try (CausalLM model = randomModel(false, DataType.FLOAT32); NDManager m = NDManager.newBaseManager()) {
      SequenceLogProbs.HEAD_CHUNK_ROWS = 2;
      double[][] tokens = new SequenceLogProbs(model).tokenLogProbs(m, prompts, responses);
      assertEquals(0, tokens[1].length);
      for (int i = 0; i < prompts.size(); i++) {
        int[] r = responses.get(i);
        assertEquals(r.length, tokens[i].length);
        for (int j = 0; j < r.length; j++) {
          // the prefix ending at response token j, scored the old way
          int[] head = java.util.Arrays.copyOf(r, j + 1);
          int[] before = java.util.Arrays.copyOf(r, j);
          double expected = legacy(model, List.of(prompts.get(i)), List.of(head))[0]
              - (j == 0 ? 0 : legacy(model, List.of(prompts.get(i)), List.of(before))[0]);
          assertEquals(expected, tokens[i][j], 1e-5 * Math.max(1, Math.abs(expected)), "sequence " + i + " token " + j);
        }
      }
    }
  }

  @Test
  void trainingGradientsMatchTheFullLogSoftmax() {
    for (boolean fused : new boolean[] {true, false}) {
      try (CausalLM model = randomModel(false, DataType.FLOAT32)) {
        model.useFusedOps(fused);
        assertGradientsClose(gradients(model, true), gradients(model, false));
      }
    }
  }

  private static void assertGradientsClose(Map<String, float[]> expected, Map<String, float[]> actual) {
    for (Map.Entry<String, float[]> e : expected.entrySet()) {
      float[] a = actual.get(e.getKey());
      double diff = 0;
      double norm = 0;
      for (int i = 0; i < a.length; i++) {
        diff += Math.pow(a[i] - e.getValue()[i], 2);
        norm += Math.pow(e.getValue()[i], 2);
      }
      assertTrue(norm > 0, e.getKey() + " has a gradient");
      assertTrue(Math.sqrt(diff) <= 1e-6 * Math.sqrt(norm), e.getKey() + ": relative gradient difference "
          + Math.sqrt(diff / norm));
    }
  }

  /** Gradients of a DPO-like objective (chosen minus rejected sums, weighted per pair) by parameter name. */
  private static Map<String, float[]> gradients(CausalLM model, boolean legacy) {
    float[] weights = new float[PROMPTS.size()];
    SplittableRandom random = new SplittableRandom(3);
    for (int i = 0; i < weights.length; i++) {
      weights[i] = (float) random.nextDouble(0.5, 1.5);
    }
    try (NDManager scope = NDManager.newBaseManager();
        GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      NDArray chosen;
      NDArray rejected;
      if (legacy) {
        chosen = legacySums(model, scope, PROMPTS, RESPONSES, true);
        rejected = legacySums(model, scope, PROMPTS, REJECTED, true);
      } else {
        SequenceLogProbs.Pairs pairs = new SequenceLogProbs(model).computePairs(scope, PROMPTS, RESPONSES, REJECTED,
            true);
        chosen = pairs.chosen().sum();
        rejected = pairs.rejected().sum();
      }
      collector.backward(chosen.sub(rejected).mul(CausalLM.owned(scope.create(weights))).sum());
    }
    Map<String, float[]> out = new LinkedHashMap<>();
    for (Map.Entry<String, Parameter> e : model.parameters().entrySet()) {
      try (NDArray grad = e.getValue().getArray().getGradient()) {
        out.put(e.getKey(), grad.toFloatArray());
        grad.subi(grad);
      }
    }
    return out;
  }

  @Test
  void leavesNoArrayBehind() {
    try (CausalLM model = randomModel(false, DataType.FLOAT32); NDManager root = NDManager.newBaseManager()) {
      SequenceLogProbs logProbs = new SequenceLogProbs(model);
      SequenceLogProbs.HEAD_CHUNK_ROWS = 4;
      Runnable pass = () -> {
        try (NDManager scope = root.newSubManager()) {
          logProbs.compute(scope, PROMPTS, RESPONSES, false);
          logProbs.tokenLogProbs(scope, PROMPTS.subList(0, 3), RESPONSES.subList(0, 3));
        }
      };
      pass.run();
      int before = MemoryDisciplineTest.liveArrays();
      for (int i = 0; i < 20; i++) {
        pass.run();
      }
      assertEquals(before, MemoryDisciplineTest.liveArrays());
    }
  }
}
