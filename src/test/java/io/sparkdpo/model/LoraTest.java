package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import io.sparkdpo.config.PeftSettings;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * LoRA in the model (CausalLM.Lora): adapters that start as the identity, the base frozen, gradients on the
 * adapters only, the per-thread adapter switch, and a bf16 base passing gradients to float32 adapters.
 */
class LoraTest {
  static final ModelConfig CONFIG = ModelConfig.llama(96, 32, 48, 2, 4, 2, false);
  static final int[] IDS = {3, 17, 40, 8, 95, 1, 22, 60, 7, 33, 2, 71};

  static float[] logits(CausalLM model) {
    try (NDManager m = NDManager.newBaseManager();
        NDArray out = model.logits(m.create(IDS, new Shape(2, IDS.length / 2)), false)) {
      return out.toFloatArray();
    }
  }

  /** Moves every lora_B off zero (as training would), deterministically. */
  static void perturbAdapters(CausalLM model, float size) {
    int i = 0;
    for (Parameter p : model.trainableParameters().values()) {
      NDArray a = p.getArray();
      float[] v = a.toFloatArray();
      for (int j = 0; j < v.length; j++) {
        v[j] += (float) (size * Math.sin(1.7 * (i * 131 + j)));
      }
      try (NDManager m = NDManager.newBaseManager(); NDArray fresh = m.create(v, a.getShape())) {
        a.set(fresh.toByteBuffer());
      }
      i++;
    }
  }

  static double maxDiff(float[] a, float[] b) {
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    return worst;
  }

  @Test
  void freshAdaptersLeaveTheLogitsBitForBitAndTheBaseFrozen() {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 5)) {
      float[] base = logits(model);
      model.addLora(PeftSettings.defaults(), 11);
      assertTrue(model.hasAdapters());
      assertArrayEquals(base, logits(model), 0f, "lora_B = 0: the adapter adds exact zeros");
      for (Parameter p : model.parameters().values()) {
        assertFalse(p.getArray().hasGradient(), p.getName() + " is frozen");
      }
      Map<String, Parameter> trainable = model.trainableParameters();
      // 7 projections x 2 layers x (A, B)
      assertEquals(28, trainable.size());
      List<String> keys = new ArrayList<>(trainable.keySet());
      assertEquals("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", keys.get(0));
      assertEquals("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", keys.get(1));
      assertEquals("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", keys.get(27));
      Parameter a = trainable.get(keys.get(0));
      assertEquals(new Shape(8, 32), a.getArray().getShape());
      assertEquals(new Shape(32, 8), trainable.get(keys.get(1)).getArray().getShape());
      float[] values = a.getArray().toFloatArray();
      double bound = 1 / Math.sqrt(32);
      double max = 0;
      for (float v : values) {
        assertTrue(Math.abs(v) <= bound, "kaiming_uniform(a=sqrt(5)) bound 1/sqrt(in): " + v);
        max = Math.max(max, Math.abs(v));
      }
      assertTrue(max > 0.8 * bound, "values fill the range: " + max);
      for (float v : trainable.get(keys.get(1)).getArray().toFloatArray()) {
        assertEquals(0f, v);
      }
    }
  }

  @Test
  void theSameSeedGivesTheSameAdaptersAndAnotherSeedOthers() {
    try (CausalLM m1 = CausalLM.create(CONFIG, Device.cpu(), 5);
        CausalLM m2 = CausalLM.create(CONFIG, Device.cpu(), 5)) {
      m1.addLora(PeftSettings.defaults(), 11);
      m2.addLora(PeftSettings.defaults(), 11);
      String key = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight";
      assertArrayEquals(m1.trainableParameters().get(key).getArray().toFloatArray(),
          m2.trainableParameters().get(key).getArray().toFloatArray(), 0f);
      assertEquals(m1.adapterFingerprint(), m2.adapterFingerprint());
      m2.addLora(PeftSettings.defaults(), 12);
      assertNotEquals(m1.adapterFingerprint(), m2.adapterFingerprint());
      assertFalse(java.util.Arrays.equals(m1.trainableParameters().get(key).getArray().toFloatArray(),
          m2.trainableParameters().get(key).getArray().toFloatArray()));
    }
  }

  @Test
  void adaptersOffGiveTheBaseExactlyAndOnlyOnThisThread() throws Exception {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 5)) {
      float[] base = logits(model);
      model.addLora(PeftSettings.defaults(), 11);
      perturbAdapters(model, 0.05f);
      float[] adapted = logits(model);
      assertTrue(maxDiff(base, adapted) > 1e-2, "the adapter changes the logits: " + maxDiff(base, adapted));
      try (var off = model.adapters(CausalLM.AdapterMode.NONE)) {
        assertArrayEquals(base, logits(model), 0f);
        // Another thread still sees the default (TRAINED).
        float[][] other = new float[1][];
        Thread t = new Thread(() -> other[0] = logits(model));
        t.start();
        t.join();
        assertArrayEquals(adapted, other[0], 0f);
        // REFERENCE without a reference adapter is the base.
        try (var ref = model.adapters(CausalLM.AdapterMode.REFERENCE)) {
          assertArrayEquals(base, logits(model), 0f);
        }
        assertArrayEquals(base, logits(model), 0f, "closing the inner scope restores NONE");
      }
      assertArrayEquals(adapted, logits(model), 0f, "and the outer one TRAINED");
    }
  }

  /** One backward pass of the summed logits; returns the gradient norm per trainable parameter. */
  static Map<String, Double> gradientNorms(CausalLM model) {
    Map<String, Double> norms = new java.util.LinkedHashMap<>();
    try (NDManager step = NDManager.newBaseManager();
        GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      NDArray logits = model.logits(step.create(IDS, new Shape(2, IDS.length / 2)), true);
      collector.backward(logits.square().sum());
    }
    for (Map.Entry<String, Parameter> e : model.trainableParameters().entrySet()) {
      try (NDArray g = e.getValue().getArray().getGradient()) {
        float[] v = g.toFloatArray();
        double s = 0;
        boolean finite = true;
        for (float x : v) {
          s += (double) x * x;
          finite &= Float.isFinite(x);
        }
        norms.put(e.getKey(), finite ? Math.sqrt(s) : Double.NaN);
        g.subi(g);
      }
    }
    return norms;
  }

  @Test
  void gradientsReachTheAdaptersOnlyOnAFloat32Base() {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 5)) {
      model.addLora(PeftSettings.defaults(), 11);
      perturbAdapters(model, 0.05f);
      Map<String, Double> norms = gradientNorms(model);
      norms.forEach((k, n) -> assertTrue(n > 0 && Double.isFinite(n), k + ": " + n));
      for (Parameter p : model.parameters().values()) {
        assertFalse(p.getArray().hasGradient(), p.getName() + " takes no gradient");
      }
    }
  }

  @Test
  void aBfloat16BaseTrainsFloat32Adapters() {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 5, DataType.BFLOAT16)) {
      float[] base = logits(model);
      PeftSettings peft = new PeftSettings("lora", 4, 8, 0, null, List.of("lm_head"));
      model.addLora(peft, 11);
      assertArrayEquals(base, logits(model), 1e-2f, "bf16 base + zero adapter: the same up to bf16 rounding");
      perturbAdapters(model, 0.05f);
      Map<String, Double> norms = gradientNorms(model);
      assertEquals(29, norms.size());
      norms.forEach((k, n) -> assertTrue(n > 0 && Double.isFinite(n), k + ": " + n));
      for (Parameter p : model.trainableParameters().values()) {
        assertEquals(DataType.FLOAT32, p.getArray().getDataType());
      }
    }
  }

  @Test
  void settingsAreCheckedNamingTheKey() {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 5)) {
      var e = assertThrows(io.sparkdpo.config.ConfigException.class,
          () -> model.addLora(new PeftSettings("lora", 0, 16, 0, List.of("q_proj", "qkv"), null), 1));
      assertTrue(e.getMessage().contains("peft.r"), e.getMessage());
      assertTrue(e.getMessage().contains("peft.target_modules") && e.getMessage().contains("qkv"), e.getMessage());
      assertFalse(model.hasAdapters());
      assertNull(model.peft());
      assertEquals(model.parameters().keySet(), model.trainableParameters().keySet());
    }
  }
}
