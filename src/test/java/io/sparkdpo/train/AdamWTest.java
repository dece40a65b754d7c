package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.LrSchedulerType;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.util.LinkedHashMap;
import java.util.List;
import org.junit.jupiter.api.Test;

class AdamWTest {
  // Parameter names as in a Llama model: a projection (decayed) and a norm weight (not decayed).
  private static final String WEIGHT = "model.layers.0.mlp.up_proj.weight";
  private static final String NORM = "model.layers.0.input_layernorm.weight";

  private static AdamW.Hyper hyper(JsonNode c) {
    return new AdamW.Hyper(c.get("beta1").asDouble(), c.get("beta2").asDouble(), c.get("eps").asDouble(),
        c.get("weight_decay").asDouble());
  }

  private static LinkedHashMap<String, NDArray> params(NDArray weight, NDArray norm) {
    LinkedHashMap<String, NDArray> p = new LinkedHashMap<>();
    p.put(WEIGHT, weight);
    p.put(NORM, norm);
    return p;
  }

  @Test
  void followsTorchAdamWStepByStepWithAndWithoutWeightDecay() {
    JsonNode cases = Golden.load("adamw.json").get("cases");
    assertEquals(3, cases.size());
    for (JsonNode c : cases) {
      String name = c.get("name").asText();
      LearningRateSchedule schedule = new LearningRateSchedule(LrSchedulerType.LINEAR, c.get("base_lr").asDouble(),
          c.get("warmup_steps").asLong(), c.get("total_steps").asLong());
      try (NDManager m = NDManager.newBaseManager()) {
        NDArray w = m.create(Golden.floats(c.get("weight")), new Shape(3, 4));
        NDArray n = m.create(Golden.floats(c.get("norm")), new Shape(5));
        try (AdamW adamw = new AdamW(params(w, n), hyper(c), AdamW.decaysByDefault())) {
          JsonNode steps = c.get("steps");
          for (int s = 0; s < steps.size(); s++) {
            JsonNode g = c.get("grads").get(s);
            try (NDArray gw = m.create(Golden.floats(g.get("weight")), new Shape(3, 4));
                 NDArray gn = m.create(Golden.floats(g.get("norm")), new Shape(5))) {
              double lr = schedule.at(s);
              assertEquals(steps.get(s).get("lr").asDouble(), lr, 0.0, name + " lr at " + s);
              adamw.step(List.of(gw, gn), lr);
            }
            Golden.assertClose(name + " weight after step " + (s + 1), Golden.floats(steps.get(s).get("weight")),
                w.toFloatArray(), 2e-7);
            Golden.assertClose(name + " norm after step " + (s + 1), Golden.floats(steps.get(s).get("norm")),
                n.toFloatArray(), 2e-7);
          }
          OptimizerState state = adamw.exportState();
          JsonNode expected = c.get("final_state");
          assertEquals(expected.get("step").asLong(), state.step());
          Golden.assertClose(name + " exp_avg", Golden.floats(expected.get("weight.exp_avg")),
              state.tensors().get(WEIGHT + ".exp_avg").data(), 2e-7);
          Golden.assertClose(name + " exp_avg_sq", Golden.floats(expected.get("weight.exp_avg_sq")),
              state.tensors().get(WEIGHT + ".exp_avg_sq").data(), 2e-7);
          Golden.assertClose(name + " norm exp_avg", Golden.floats(expected.get("norm.exp_avg")),
              state.tensors().get(NORM + ".exp_avg").data(), 2e-7);
          Golden.assertClose(name + " norm exp_avg_sq", Golden.floats(expected.get("norm.exp_avg_sq")),
              state.tensors().get(NORM + ".exp_avg_sq").data(), 2e-7);
        }
      }
    }
  }

  @Test
  void exemptsBiasesAndNormsFromWeightDecayLikeHuggingFace() {
    for (String decayed : List.of("model.embed_tokens.weight", "model.layers.3.self_attn.q_proj.weight",
        "lm_head.weight", "model.layers.0.mlp.down_proj.weight")) {
      assertTrue(AdamW.decaysByDefault().test(decayed), decayed);
    }
    for (String exempt : List.of("model.norm.weight", "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.q_proj.bias", "ln_f.bias",
        "encoder.layer_norm.weight", "transformer.LayerNorm.weight")) {
      assertFalse(AdamW.decaysByDefault().test(exempt), exempt);
    }
  }

  @Test
  void stateSurvivesSerialisationBitForBitAndResumesIdentically() throws Exception {
    AdamW.Hyper hyper = new AdamW.Hyper(0.9, 0.95, 1e-8, 0.1);
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray w0 = m.randomNormal(new Shape(4, 3));
      NDArray n0 = m.randomNormal(new Shape(3));
      List<NDArray[]> grads = new java.util.ArrayList<>();
      for (int s = 0; s < 6; s++) {
        grads.add(new NDArray[] {m.randomNormal(new Shape(4, 3)), m.randomNormal(new Shape(3))});
      }
      // Six steps straight.
      NDArray w = w0.duplicate();
      NDArray n = n0.duplicate();
      try (AdamW straight = new AdamW(params(w, n), hyper, AdamW.decaysByDefault())) {
        for (int s = 0; s < 6; s++) {
          straight.step(List.of(grads.get(s)), 1e-2 * (s + 1));
        }
      }
      // Three steps, checkpoint, a fresh optimizer and fresh parameters from the checkpoint, three more.
      NDArray w1 = w0.duplicate();
      NDArray n1 = n0.duplicate();
      byte[] saved;
      float[] wSaved;
      float[] nSaved;
      try (AdamW first = new AdamW(params(w1, n1), hyper, AdamW.decaysByDefault())) {
        for (int s = 0; s < 3; s++) {
          first.step(List.of(grads.get(s)), 1e-2 * (s + 1));
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        first.exportState().write(bytes);
        saved = bytes.toByteArray();
        wSaved = w1.toFloatArray();
        nSaved = n1.toFloatArray();
        OptimizerState back = OptimizerState.read(new ByteArrayInputStream(saved), "test");
        assertEquals(first.exportState(), back, "bit-exact round trip");
      }
      NDArray w2 = m.create(wSaved, new Shape(4, 3));
      NDArray n2 = m.create(nSaved, new Shape(3));
      try (AdamW resumed = new AdamW(params(w2, n2), hyper, AdamW.decaysByDefault())) {
        resumed.importState(OptimizerState.read(new ByteArrayInputStream(saved), "test"));
        assertEquals(3, resumed.stepCount());
        for (int s = 3; s < 6; s++) {
          resumed.step(List.of(grads.get(s)), 1e-2 * (s + 1));
        }
      }
      assertArrayEquals(w.toFloatArray(), w2.toFloatArray(), 0f);
      assertArrayEquals(n.toFloatArray(), n2.toFloatArray(), 0f);
    }
  }

  @Test
  void serialisedStateIsASafetensorsFile() throws Exception {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray w = m.ones(new Shape(2, 2));
      try (AdamW a = new AdamW(params(w, m.ones(new Shape(1))), new AdamW.Hyper(0.9, 0.999, 1e-8, 0),
          AdamW.decaysByDefault())) {
        a.step(List.of(m.ones(new Shape(2, 2)), m.ones(new Shape(1))), 0.1);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        a.exportState().write(bytes);
        byte[] b = bytes.toByteArray();
        long headerLength = java.nio.ByteBuffer.wrap(b, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLength % 8);
        String header = new String(b, 8, (int) headerLength, java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(header.contains("\"" + WEIGHT + ".exp_avg\":{\"dtype\":\"F32\",\"shape\":[2,2],"
            + "\"data_offsets\":[0,16]}"), header);
        assertTrue(header.contains("\"step\":\"1\""), header);
        assertEquals(8 + headerLength + 4 * (4 + 4 + 1 + 1), b.length);
        // After one step with g = 1: m = 0.1, stored little-endian after the header.
        float first = java.nio.ByteBuffer.wrap(b, 8 + (int) headerLength, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .getFloat();
        assertEquals(0.1f, first, 1e-7f);
      }
    }
  }

  @Test
  void importRejectsStateOfAnotherModel() {
    try (NDManager m = NDManager.newBaseManager();
         AdamW a = new AdamW(params(m.ones(new Shape(2, 2)), m.ones(new Shape(3))), new AdamW.Hyper(0.9, 0.999, 1e-8,
             0), AdamW.decaysByDefault());
         AdamW b = new AdamW(params(m.ones(new Shape(2, 3)), m.ones(new Shape(3))), new AdamW.Hyper(0.9, 0.999, 1e-8,
             0), AdamW.decaysByDefault())) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.importState(a.exportState()));
      assertTrue(e.getMessage().contains(WEIGHT + ".exp_avg has shape (2, 2), the parameter (2, 3)"), e.getMessage());
    }
  }

  @Test
  void stepsDoNotGrowTheLiveArrayCount() {
    try (NDManager model = NDManager.newBaseManager(); NDManager grads = NDManager.newBaseManager()) {
      NDArray w = model.randomNormal(new Shape(16, 8));
      NDArray n = model.ones(new Shape(8));
      List<NDArray> g = List.of(grads.randomNormal(new Shape(16, 8)), grads.randomNormal(new Shape(8)));
      try (AdamW a = new AdamW(params(w, n), new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01), AdamW.decaysByDefault())) {
        a.step(g, 1e-3);
        int optimizerArrays = a.liveArrays();
        int modelArrays = model.getManagedArrays().size();
        int gradArrays = grads.getManagedArrays().size();
        for (int s = 0; s < 20; s++) {
          a.step(g, 1e-3);
        }
        assertEquals(4, optimizerArrays, "two moments per parameter");
        assertEquals(optimizerArrays, a.liveArrays());
        assertEquals(modelArrays, model.getManagedArrays().size());
        assertEquals(gradArrays, grads.getManagedArrays().size());
        a.importState(a.exportState());
        assertEquals(optimizerArrays, a.liveArrays(), "import replaces, not adds");
      }
    }
  }

  /**
   * Moments larger than one copy chunk stream out of and back into device arrays bit for bit, through the same
   * file the heap reader reads, and the restored optimizer takes the same next step as the original.
   */
  @Test
  void stateLargerThanOneChunkStreamsBackBitForBit() throws Exception {
    Shape big = new Shape(3, OptimizerState.CHUNK_FLOATS / 2 + 17); // 1.5 chunks per moment, a ragged tail
    try (NDManager m = NDManager.newBaseManager()) {
      m.getEngine().setRandomSeed(5);
      NDArray w = m.randomNormal(big);
      NDArray n = m.randomNormal(new Shape(7));
      NDArray w2 = w.duplicate();
      NDArray n2 = n.duplicate();
      List<NDArray> g1 = List.of(m.randomNormal(big), m.randomNormal(new Shape(7)));
      List<NDArray> g2 = List.of(m.randomNormal(big), m.randomNormal(new Shape(7)));
      AdamW.Hyper h = new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01);
      byte[] saved;
      try (AdamW a = new AdamW(params(w, n), h, AdamW.decaysByDefault());
           AdamW b = new AdamW(params(w2, n2), h, AdamW.decaysByDefault())) {
        a.step(g1, 1e-3);
        b.step(g1, 1e-3);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        a.exportState().write(bytes);
        saved = bytes.toByteArray();
        OptimizerState heap = OptimizerState.read(new ByteArrayInputStream(saved), "heap");
        assertEquals(a.exportState(), heap, "streamed out = what the heap reader reads");

        try (AdamW c = new AdamW(params(w2.duplicate(), n2.duplicate()), h, AdamW.decaysByDefault())) {
          int live = c.liveArrays();
          c.restoreState(new ByteArrayInputStream(saved), "run/checkpoints/step-1/optimizer.safetensors");
          assertEquals(1, c.stepCount());
          assertEquals(live, c.liveArrays(), "restoring replaces the moments, it adds none");
          assertEquals(a.exportState(), c.exportState(), "restored bit for bit");
        }
        b.restoreState(new ByteArrayInputStream(saved), "run/checkpoints/step-1/optimizer.safetensors");
        a.step(g2, 1e-3);
        b.step(g2, 1e-3);
        assertArrayEquals(w.toFloatArray(), w2.toFloatArray(), 0f);
        assertArrayEquals(n.toFloatArray(), n2.toFloatArray(), 0f);
      }
    }
  }

  @Test
  void restoringStateOfAnotherModelNamesTheFileAndKeepsTheMoments() throws Exception {
    try (NDManager m = NDManager.newBaseManager();
         AdamW a = new AdamW(params(m.ones(new Shape(2, 2)), m.ones(new Shape(3))), new AdamW.Hyper(0.9, 0.999, 1e-8,
             0), AdamW.decaysByDefault());
         AdamW b = new AdamW(params(m.ones(new Shape(2, 3)), m.ones(new Shape(3))), new AdamW.Hyper(0.9, 0.999, 1e-8,
             0), AdamW.decaysByDefault())) {
      a.step(List.of(m.ones(new Shape(2, 2)), m.ones(new Shape(3))), 0.1);
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      a.exportState().write(bytes);
      OptimizerState before = OptimizerState.read(new ByteArrayInputStream(toBytes(b)), "b");
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> b.restoreState(new ByteArrayInputStream(bytes.toByteArray()), "step-1/optimizer.safetensors"));
      assertTrue(e.getMessage().startsWith("step-1/optimizer.safetensors: optimizer state does not fit the model: "
          + WEIGHT + ".exp_avg has shape (2, 2), the parameter (2, 3)"), e.getMessage());
      assertEquals(before, b.exportState());
      assertEquals(0, b.stepCount());
    }
  }

  private static byte[] toBytes(AdamW a) throws java.io.IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    a.exportState().write(bytes);
    return bytes.toByteArray();
  }

  @Test
  void aFileThatIsNotOptimizerStateIsNamed() {
    java.io.IOException e = assertThrows(java.io.IOException.class, () -> OptimizerState.read(
        new ByteArrayInputStream("not a safetensors file at all".getBytes(java.nio.charset.StandardCharsets.UTF_8)),
        "run/checkpoints/step-3/optimizer.safetensors"));
    assertTrue(e.getMessage().startsWith("run/checkpoints/step-3/optimizer.safetensors: not an optimizer state file"),
        e.getMessage());
  }
}
