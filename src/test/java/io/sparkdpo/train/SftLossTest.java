package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.junit.jupiter.api.Test;

class SftLossTest {
  @Test
  void matchesTransformersCausalLmLossAndGradient() {
    JsonNode cases = Golden.load("sft_loss.json").get("cases");
    assertEquals(2, cases.size());
    for (JsonNode c : cases) {
      String what = c.get("name").asText();
      try (NDManager m = NDManager.newBaseManager()) {
        long[] shape = Golden.longs(c.get("shape"));
        NDArray logits = m.create(Golden.floats(c.get("logits")), new Shape(shape));
        NDArray targets = m.create(Golden.longs(c.get("targets")), new Shape(shape[0], shape[1]));
        NDArray mask = m.create(Golden.longs(c.get("mask")), new Shape(shape[0], shape[1]));
        logits.setRequiresGradient(true);
        SftOutput out;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          out = SftLoss.compute(logits, targets, mask);
          gc.backward(out.meanLoss());
        }
        assertEquals(c.get("tokens").asLong(), out.tokens(), what);
        Golden.assertClose(what + " loss", c.get("loss").asDouble(), out.meanLoss().getFloat(), 2e-7);
        Golden.assertClose(what + " summed loss", c.get("loss").asDouble() * out.tokens(), out.lossSum().getFloat(),
            2e-7);
        Golden.assertClose(what + " d/d logits", Golden.floats(c.get("grad_logits")),
            logits.getGradient().toFloatArray(), 2e-7);
      }
    }
  }

  @Test
  void completionOnlyBatchScoresResponseTokensAndIgnoresPadding() {
    SftBatch b = SftBatch.of(List.of(new int[] {5, 6, 7}, new int[] {9}), List.of(new int[] {20, 21}, new int[] {30,
        31, 32, 0}), 1, true);
    assertEquals(2, b.batchSize());
    assertEquals(5, b.length());
    assertArrayEquals(new long[] {5, 6, 7, 20, 21, 9, 30, 31, 32, 0}, b.inputIds());
    // target[t] = input[t+1]; the last real position and padding predict nothing.
    assertArrayEquals(new long[] {6, 7, 20, 21, 1, 30, 31, 32, 0, 1}, b.targets());
    assertArrayEquals(new float[] {0, 0, 1, 1, 0, 1, 1, 1, 1, 0}, b.lossMask());
    assertEquals(2 + 4, b.tokens(), "every response token is predicted exactly once");
  }

  @Test
  void wholeSequenceBatchAlsoScoresPromptTokensAfterTheFirst() {
    SftBatch b = SftBatch.of(List.of(new int[] {5, 6, 7}, new int[] {9}), List.of(new int[] {20, 21}, new int[] {30}),
        1, false);
    assertArrayEquals(new float[] {1, 1, 1, 1, 0, 1, 0, 0, 0, 0}, b.lossMask());
    assertEquals(4 + 1, b.tokens());
  }

  @Test
  void batchArraysFeedTheLossDirectly() {
    SftBatch b = SftBatch.of(List.of(new int[] {2, 3}), List.of(new int[] {4, 0}), 1, true);
    try (NDManager m = NDManager.newBaseManager(); NDList arrays = b.toArrays(m)) {
      // Uniform logits over a vocabulary of 8: every scored token costs ln 8.
      NDArray logits = m.zeros(new Shape(1, b.length(), 8));
      SftOutput out = SftLoss.compute(logits, arrays.get(1), arrays.get(2));
      assertEquals(2, out.tokens());
      assertEquals(Math.log(8), out.meanLoss().getFloat(), 1e-6);
      assertEquals(2 * Math.log(8), out.lossSum().getFloat(), 1e-5);
    }
  }

  @Test
  void aMaskWithoutTokensIsAnError() {
    try (NDManager m = NDManager.newBaseManager()) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SftLoss.compute(
          m.zeros(new Shape(1, 3, 4)), m.zeros(new Shape(1, 3)), m.zeros(new Shape(1, 3))));
      assertTrue(e.getMessage().contains("selects no token"), e.getMessage());
      assertThrows(IllegalArgumentException.class,
          () -> SftBatch.of(List.of(new int[] {1}), List.of(new int[0]), 1, true));
    }
  }

  @Test
  void leavesOnlyItsOutputsInTheManager() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray logits = m.randomNormal(new Shape(2, 4, 6));
      NDArray targets = m.create(new long[] {1, 2, 3, 4, 5, 0, 1, 2}, new Shape(2, 4));
      NDArray mask = m.ones(new Shape(2, 4));
      int before = m.getManagedArrays().size();
      try (SftOutput out = SftLoss.compute(logits, targets, mask)) {
        assertEquals(8, out.tokens());
      }
      assertEquals(before, m.getManagedArrays().size());
    }
  }
}
