package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.sparkdpo.io.Storage;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PPO's per-token pass: log pi at a temperature, the value head beside it, entropy, and where gradients go. */
class ResponseTokensTest {
  static CausalLM model;
  static final List<int[]> PROMPTS = List.of(new int[] {4, 9, 16, 25, 36}, new int[] {7}, new int[] {50, 51, 52});
  static final List<int[]> RESPONSES = List.of(new int[] {3, 5}, new int[] {11, 12, 13, 14}, new int[] {60});

  @BeforeAll
  static void createModel() {
    model = CausalLM.create(ModelConfig.llama(64, 32, 64, 2, 4, 2, true), Device.cpu(), 9);
  }

  @AfterAll
  static void closeModel() {
    model.close();
  }

  @Test
  void atTemperatureOneTheLogProbsAreTheTeacherForcedOnes() {
    try (NDManager m = NDManager.newBaseManager()) {
      double[][] expected = new SequenceLogProbs(model).tokenLogProbs(m, PROMPTS, RESPONSES);
      ResponseTokens.Result r = new ResponseTokens(model).compute(m, PROMPTS, RESPONSES, 1.0, null, false);
      assertArrayEquals(new int[] {2, 4, 1}, r.lengths());
      double[][] actual = r.rows(r.logProbs());
      for (int i = 0; i < expected.length; i++) {
        assertArrayEquals(expected[i], actual[i], 1e-6, "sequence " + i);
      }
    }
  }

  @Test
  void temperatureDividesTheLogitsBeforeTheSoftmaxForLogProbsAndEntropy() {
    double temperature = 0.7;
    int vocab = model.config().vocabSize();
    try (NDManager m = NDManager.newBaseManager()) {
      ResponseTokens.Result r = new ResponseTokens(model).compute(m, PROMPTS, RESPONSES, temperature, null, false);
      double[][] logp = r.rows(r.logProbs());
      double[][] entropy = r.rows(r.entropy());
      for (int i = 0; i < PROMPTS.size(); i++) {
        int[] p = PROMPTS.get(i);
        int[] resp = RESPONSES.get(i);
        int[] ids = new int[p.length + resp.length];
        System.arraycopy(p, 0, ids, 0, p.length);
        System.arraycopy(resp, 0, ids, p.length, resp.length);
        float[] logits = model.logits(m.create(ids, new Shape(1, ids.length)), false).toFloatArray();
        for (int j = 0; j < resp.length; j++) {
          int row = (p.length + j - 1) * vocab;
          double max = Double.NEGATIVE_INFINITY;
          for (int v = 0; v < vocab; v++) {
            max = Math.max(max, logits[row + v] / temperature);
          }
          double z = 0;
          for (int v = 0; v < vocab; v++) {
            z += Math.exp(logits[row + v] / temperature - max);
          }
          double h = 0;
          for (int v = 0; v < vocab; v++) {
            double lp = logits[row + v] / temperature - max - Math.log(z);
            h -= Math.exp(lp) * lp;
          }
          assertEquals(logits[row + resp[j]] / temperature - max - Math.log(z), logp[i][j], 1e-5, i + "," + j);
          assertEquals(h, entropy[i][j], 1e-5, "entropy " + i + "," + j);
        }
      }
    }
  }

  @Test
  void aSequencesResultsDoNotDependOnItsBatchOrOnRecording() {
    try (NDManager m = NDManager.newBaseManager(); ValueHead head = ValueHead.create(model, 1)) {
      ResponseTokens tokens = new ResponseTokens(model);
      ResponseTokens.Result all = tokens.compute(m, PROMPTS, RESPONSES, 1.0, head, false);
      ResponseTokens.Result one = tokens.compute(m, PROMPTS.subList(1, 2), RESPONSES.subList(1, 2), 1.0, head, true);
      assertArrayEquals(all.rows(all.logProbs())[1], one.rows(one.logProbs())[0], 1e-6);
      assertArrayEquals(all.rows(all.values())[1], one.rows(one.values())[0], 1e-6);
    }
  }

  @Test
  void theValueLossTrainsTheHeadOnlyAndThePolicyLossReachesTheTrunk() {
    NDArray embedding = model.parameters().get("model.embed_tokens.weight").getArray();
    try (NDManager m = NDManager.newBaseManager(); ValueHead head = ValueHead.create(model, 1)) {
      ResponseTokens tokens = new ResponseTokens(model);
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        ResponseTokens.Result r = tokens.compute(m, PROMPTS, RESPONSES, 1.0, head, true);
        gc.backward(r.logProbs().sum());
      }
      try (NDArray g = embedding.getGradient(); NDArray w = head.parameters().get(ValueHead.WEIGHT).getArray()
          .getGradient()) {
        assertTrue(g.abs().sum().getFloat() > 0, "log pi's gradient reaches the embedding");
        assertEquals(0f, w.abs().sum().getFloat(), "log pi does not depend on the value head");
      }
      zeroGradients(head);
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        ResponseTokens.Result r = tokens.compute(m, PROMPTS, RESPONSES, 1.0, head, true);
        gc.backward(r.values().sum());
      }
      try (NDArray g = embedding.getGradient(); NDArray w = head.parameters().get(ValueHead.WEIGHT).getArray()
          .getGradient(); NDArray b = head.parameters().get(ValueHead.BIAS).getArray().getGradient()) {
        assertEquals(0f, g.abs().sum().getFloat(), "the value head reads detached hidden states");
        assertTrue(w.abs().sum().getFloat() > 0);
        assertEquals(7f, b.getFloat(), 1e-6, "d sum(V) / d bias = the 7 response tokens");
      }
      zeroGradients(head);
    }
  }

  private static void zeroGradients(ValueHead head) {
    model.parameters().values().forEach(p -> JniUtils.zeroGrad((PtNDArray) p.getArray()));
    head.parameters().values().forEach(p -> JniUtils.zeroGrad((PtNDArray) p.getArray()));
  }

  @Test
  void theValueHeadIsTorchsLinearInitDrawnFromItsSeed() {
    try (ValueHead a = ValueHead.create(32, Device.cpu(), 5); ValueHead b = ValueHead.create(32, Device.cpu(), 5);
        ValueHead c = ValueHead.create(32, Device.cpu(), 6)) {
      float[] wa = a.parameters().get(ValueHead.WEIGHT).getArray().toFloatArray();
      assertArrayEquals(wa, b.parameters().get(ValueHead.WEIGHT).getArray().toFloatArray());
      assertNotEquals(wa[0], c.parameters().get(ValueHead.WEIGHT).getArray().toFloatArray()[0]);
      double bound = 1 / Math.sqrt(32);
      for (float w : wa) {
        assertTrue(Math.abs(w) <= bound, "weight " + w);
      }
      assertEquals(List.of(ValueHead.WEIGHT, ValueHead.BIAS), List.copyOf(a.parameters().keySet()));
      assertEquals(new Shape(1, 32), a.parameters().get(ValueHead.WEIGHT).getArray().getShape());
    }
  }

  @Test
  void emptyPromptsOrResponsesAndBadTemperaturesAreRefused() {
    try (NDManager m = NDManager.newBaseManager()) {
      ResponseTokens tokens = new ResponseTokens(model);
      assertThrows(IllegalArgumentException.class,
          () -> tokens.compute(m, List.of(new int[0]), List.of(new int[] {3}), 1.0, null, false));
      assertThrows(IllegalArgumentException.class,
          () -> tokens.compute(m, List.of(new int[] {3}), List.of(new int[0]), 1.0, null, false));
      assertThrows(IllegalArgumentException.class,
          () -> tokens.compute(m, PROMPTS, RESPONSES, 0.0, null, false));
      assertThrows(IllegalArgumentException.class,
          () -> tokens.compute(m, List.of(new int[] {3}), List.of(new int[] {64}), 1.0, null, false));
    }
  }

  @Test
  void theValueHeadSavesAndLoadsBitForBitAndRefusesAnotherShape(@TempDir Path dir) {
    String file = dir.resolve("value_head.safetensors").toString();
    try (ValueHead head = ValueHead.create(32, Device.cpu(), 5)) {
      head.save(file, Storage.local());
      try (ValueHead back = ValueHead.load(file, Storage.local(), Device.cpu(), 32)) {
        for (String name : List.of(ValueHead.WEIGHT, ValueHead.BIAS)) {
          assertArrayEquals(head.parameters().get(name).getArray().toFloatArray(),
              back.parameters().get(name).getArray().toFloatArray(), 0f, name);
          assertTrue(back.parameters().get(name).getArray().hasGradient(), name + " trains after loading");
        }
      }
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> ValueHead.load(file, Storage.local(), Device.cpu(), 16));
      assertTrue(e.getMessage().contains(file) && e.getMessage().contains(ValueHead.WEIGHT), e.getMessage());
    }
  }
}
