package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.sparkdpo.io.Storage;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class SequenceLogProbsTest {
  static CausalLM model;
  static ModelConfig config;
  static SequenceLogProbs logProbs;

  /** A golden checkpoint: weights scaled so outputs depend strongly on the input (random init is near uniform). */
  @BeforeAll
  static void loadModel() {
    model = GoldenReferenceTest.loadFloat32(GoldenReferenceTest.folder("llama_biases_untied_bf16"));
    config = model.config();
    logProbs = new SequenceLogProbs(model);
  }

  /**
   * Whether autograd recorded the operation that produced {@code a}: backward through an unrecorded result
   * fails in libtorch ("does not require grad and does not have a grad_fn").
   */
  static boolean recorded(NDArray a) {
    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      collector.backward(a.sum());
      return true;
    } catch (ai.djl.engine.EngineException e) {
      return false;
    }
  }

  @AfterAll
  static void closeModel() {
    model.close();
  }

  /** log p(response | prompt) from the model's logits of this one sequence, log-softmax in double in Java. */
  static double byHand(int[] prompt, int[] response) {
    int[] ids = new int[prompt.length + response.length];
    System.arraycopy(prompt, 0, ids, 0, prompt.length);
    System.arraycopy(response, 0, ids, prompt.length, response.length);
    try (NDManager m = NDManager.newBaseManager()) {
      float[] logits = model.logits(m.create(ids, new Shape(1, ids.length)), false).toFloatArray();
      int v = config.vocabSize();
      double total = 0;
      for (int t = prompt.length; t < ids.length; t++) {
        int row = (t - 1) * v;
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
          max = Math.max(max, logits[row + i]);
        }
        double z = 0;
        for (int i = 0; i < v; i++) {
          z += Math.exp(logits[row + i] - max);
        }
        total += logits[row + ids[t]] - max - Math.log(z);
      }
      return total;
    }
  }

  @Test
  void sumsOnlyTheResponseTokensLogProbabilities() {
    List<int[]> prompts = List.of(new int[] {3, 4, 5}, new int[] {9}, new int[] {1, 2, 3, 4, 5, 6, 7});
    List<int[]> responses = List.of(new int[] {10, 11}, new int[] {12, 13, 14, 15, 16}, new int[] {0});
    try (NDManager m = NDManager.newBaseManager()) {
      SequenceLogProbs.Batch b = logProbs.compute(m, prompts, responses, false);
      assertArrayEquals(new int[] {2, 5, 1}, b.counts());
      for (int i = 0; i < 3; i++) {
        double expected = byHand(prompts.get(i), responses.get(i));
        assertEquals(expected, b.sums()[i], 1e-4, "sequence " + i);
        assertEquals(expected / responses.get(i).length, b.means()[i], 1e-4, "sequence " + i);
        assertTrue(b.sums()[i] < 0);
      }
    }
  }

  @Test
  void rightPaddingAndBatchCompanyDoNotChangeASequencesResult() {
    int[] prompt = {7, 8};
    int[] response = {9, 10, 11};
    try (NDManager m = NDManager.newBaseManager()) {
      double alone = logProbs.compute(m, List.of(prompt), List.of(response), false).sums()[0];
      double padded = logProbs.compute(m, List.of(new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, prompt),
          List.of(new int[] {13, 14, 15, 16, 17, 18, 19, 20}, response), false).sums()[1];
      assertEquals(alone, padded, 1e-5);
      // The prompt conditions the response: a different prompt gives a different result.
      double other = logProbs.compute(m, List.of(new int[] {30, 31}), List.of(response), false).sums()[0];
      assertTrue(Math.abs(other - alone) > 1e-3);
    }
  }

  @Test
  void pairsMatchChosenAndRejectedComputedSeparately() {
    List<int[]> prompts = List.of(new int[] {3, 4}, new int[] {5, 6, 7});
    List<int[]> chosen = List.of(new int[] {8, 9, 0}, new int[] {10});
    List<int[]> rejected = List.of(new int[] {11, 0}, new int[] {12, 13, 14, 15, 0});
    try (NDManager m = NDManager.newBaseManager()) {
      SequenceLogProbs.Pairs pairs = logProbs.computePairs(m, prompts, chosen, rejected, false);
      SequenceLogProbs.Batch c = logProbs.compute(m, prompts, chosen, false);
      SequenceLogProbs.Batch r = logProbs.compute(m, prompts, rejected, false);
      assertArrayEquals(c.sums(), pairs.chosen().sums(), 1e-5);
      assertArrayEquals(r.sums(), pairs.rejected().sums(), 1e-5);
      assertArrayEquals(r.means(), pairs.rejected().means(), 1e-5);
      assertArrayEquals(new int[] {2, 5}, pairs.rejected().counts());
      assertEquals(new Shape(2), pairs.chosen().sum().getShape());
    }
  }

  @Test
  void trainingModeBackpropagatesIntoTheParameters() {
    try (NDManager m = NDManager.newBaseManager();
        GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      SequenceLogProbs.Pairs pairs = logProbs.computePairs(m, List.of(new int[] {1, 2}),
          List.of(new int[] {3, 4}), List.of(new int[] {5}), true);
      collector.backward(pairs.chosen().sum().sub(pairs.rejected().sum()).sum());
      for (String name : List.of("lm_head.weight", "model.layers.0.self_attn.q_proj.weight",
          "model.embed_tokens.weight", "model.layers.1.post_attention_layernorm.weight")) {
        try (NDArray grad = model.parameters().get(name).getArray().getGradient()) {
          assertTrue(grad.abs().sum().getFloat() > 0, name + " has a gradient");
          grad.subi(grad); // leave the shared model clean for other tests
        }
      }
      // An embedding row used by no sequence gets no gradient.
      try (NDArray grad = model.parameters().get("model.embed_tokens.weight").getArray().getGradient()) {
        assertEquals(0f, grad.get(40).abs().sum().getFloat());
      }
    }
  }

  @Test
  void inferenceRecordsNoGraphEvenOnAThreadWhoseGradModeIsOn() throws Exception {
    AtomicReference<Object> result = new AtomicReference<>();
    Thread thread = new Thread(() -> {
      try (NDManager m = NDManager.newBaseManager()) {
        boolean before = JniUtils.isGradMode();
        SequenceLogProbs.Batch b = logProbs.compute(m, List.of(new int[] {1, 2}), List.of(new int[] {3}), false);
        boolean after = JniUtils.isGradMode();
        result.set(List.of(before, recorded(b.sum()), after));
      } catch (Throwable t) {
        result.set(t);
      }
    });
    thread.start();
    thread.join();
    assertEquals(List.of(true, false, true), result.get(), "grad mode on before, no graph, grad mode restored");
  }

  @Test
  void badInputsFailNamingTheSequenceAndPosition() {
    try (NDManager m = NDManager.newBaseManager()) {
      String empty = assertThrows(IllegalArgumentException.class, () -> logProbs.compute(m,
          List.of(new int[] {1}, new int[] {2}), List.of(new int[] {3}, new int[0]), false)).getMessage();
      assertEquals("sequence 1 has an empty response", empty);
      String vocab = assertThrows(IllegalArgumentException.class, () -> logProbs.compute(m,
          List.of(new int[] {1}), List.of(new int[] {3, 64}), false)).getMessage();
      assertEquals("sequence 0, response position 1: token id 64 is outside the vocabulary of 64", vocab);
      assertFalse(m.getManagedArrays().size() > 0, "nothing left behind by failed calls");
    }
  }
}
