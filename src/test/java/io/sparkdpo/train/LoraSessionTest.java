package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** DPO and SFT sessions with LoRA on the small test model: one replica, no Spark. */
class LoraSessionTest {
  private static final Storage STORAGE = Storage.local();
  /** r * (in + out) summed over the 7 projections of a layer of {@link TrainingFixtures#SMALL}, 2 layers, r = 4. */
  private static final long ADAPTER_PARAMETERS = 4L * 2 * ((64 + 64) + (64 + 32) + (64 + 32) + (64 + 64)
      + (64 + 128) + (64 + 128) + (128 + 64));
  @TempDir
  static Path tmp;
  static String model;
  static String data;

  @BeforeAll
  static void inputs() {
    model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 5);
    data = TrainingFixtures.writePrepared(tmp.resolve("data"),
        List.of(TrainingFixtures.pairs("t", 24, TrainingFixtures.SMALL.vocabSize(), 1)),
        TrainingFixtures.pairs("e", 6, TrainingFixtures.SMALL.vocabSize(), 2), null);
  }

  static JobConfig loraConfig(String... more) {
    List<String> o = new ArrayList<>(List.of("model.path=" + model, "train.reference_mode=in_loop",
        "train.learning_rate=0.01", "train.warmup_steps=0", "train.beta=0.1", "train.per_device_train_batch_size=4",
        "train.peft.type=lora", "train.peft.r=4"));
    o.addAll(List.of(more));
    return TrainingFixtures.config(o.toArray(String[]::new));
  }

  static TrainingSession<?> open(JobConfig cfg, long totalSteps, GradientReducer reducer,
      Optional<Checkpoint> resume) {
    PreparedData d = PreparedData.open(STORAGE, data);
    SessionSpec spec = SessionSpec.dpo(cfg.model(), cfg.train(), cfg.model().path(), totalSteps, d.trainRows());
    return TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"), d.trainFiles(), d.evalFiles(), reducer, resume);
  }

  static Map<String, float[]> arrays(Map<String, ai.djl.nn.Parameter> params) {
    Map<String, float[]> out = new LinkedHashMap<>();
    params.forEach((name, p) -> out.put(name, p.getArray().toType(ai.djl.ndarray.types.DataType.FLOAT32, false)
        .toFloatArray()));
    return out;
  }

  /** A reducer of two replicas whose other replica had the same gradients: the mean is the buffer itself. */
  static final class CountingReducer implements GradientReducer {
    long floats;

    @Override
    public int worldSize() {
      return 2;
    }

    @Override
    public void allReduceMean(FloatBuffer direct) {
      floats += direct.remaining();
    }
  }

  @Test
  void stepOneIsLn2AndOnlyTheAdaptersTrainAndTravel() {
    CountingReducer reducer = new CountingReducer();
    try (TrainingSession<?> s = open(loraConfig(), 4, reducer, Optional.empty())) {
      Map<String, float[]> baseBefore = arrays(s.policy().parameters());
      Map<String, float[]> adaptersBefore = arrays(s.policy().trainableParameters());
      assertEquals(ADAPTER_PARAMETERS, adaptersBefore.values().stream().mapToLong(a -> a.length).sum());
      assertTrue(adaptersBefore.keySet().iterator().next().startsWith("base_model.model.model.layers.0.self_attn"),
          adaptersBefore.keySet().toString());
      List<Double> losses = new ArrayList<>();
      for (int step = 1; step <= 4; step++) {
        reducer.floats = 0;
        TrainingSession.Outcome o = s.step(step);
        losses.add(o.metrics().get(MetricNames.LOSS));
        assertEquals(4.0 * ADAPTER_PARAMETERS, o.metrics().get(TrainingSession.ALLREDUCE_BYTES),
            "step " + step + ": the adapters' gradients alone are all-reduced");
        // plus the two halves of the global item count and of the token count (num_tokens)
        assertEquals(ADAPTER_PARAMETERS + 4, reducer.floats);
      }
      assertEquals(Math.log(2), losses.get(0), 1e-7, "lora_B = 0: policy = reference at step 1");
      assertTrue(losses.get(3) < losses.get(0) - 1e-3, losses.toString());
      assertEquals(0.0, TrainingFixtures.maxDifference(baseBefore, arrays(s.policy().parameters())),
          "the base is frozen");
      assertTrue(TrainingFixtures.maxDifference(adaptersBefore, arrays(s.policy().trainableParameters())) > 1e-3,
          "the adapters moved");
      assertEquals(ADAPTER_PARAMETERS, s.parameterArrays().stream().mapToLong(a -> a.size()).sum(),
          "replica checksums cover the adapters");
    }
  }

  /** With LoRA the base is not widened to float32: a bf16 base stays bf16, the adapters train in float32. */
  @Test
  void aBfloat16BaseStaysBfloat16AndItsFloat32AdaptersTrain() {
    try (TrainingSession<?> s = open(loraConfig("model.dtype=bfloat16"), 3, GradientReducer.SINGLE,
        Optional.empty())) {
      assertEquals(ai.djl.ndarray.types.DataType.BFLOAT16, s.policy().dtype());
      Map<String, float[]> before = arrays(s.policy().trainableParameters());
      assertEquals(Math.log(2), s.step(1).metrics().get(MetricNames.LOSS), 1e-6, "same bf16 base on both sides");
      s.step(2);
      assertTrue(TrainingFixtures.maxDifference(before, arrays(s.policy().trainableParameters())) > 1e-3);
      for (ai.djl.nn.Parameter p : s.policy().trainableParameters().values()) {
        assertEquals(ai.djl.ndarray.types.DataType.FLOAT32, p.getArray().getDataType(), p.getName());
      }
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(
        loraConfig("model.dtype=bfloat16", "train.mixed_precision=bf16"), 3, GradientReducer.SINGLE,
        Optional.empty()));
    assertTrue(e.getMessage().startsWith("train.mixed_precision is bf16, but the LoRA base is held in"),
        e.getMessage());
  }

  /**
   * Dropout draws from torch's generator, which a fresh JVM or a resumed session would otherwise start elsewhere:
   * the session seeds it per micro-batch, so the resumed run continues with the straight run's bits.
   */
  @Test
  void resumingALoraRunWithDropoutGivesTheBitsOfAStraightRun() {
    JobConfig cfg = loraConfig("train.peft.dropout=0.2");
    Map<String, float[]> straight;
    List<Double> straightLoss = new ArrayList<>();
    try (TrainingSession<?> s = open(cfg, 6, GradientReducer.SINGLE, Optional.empty())) {
      for (int step = 1; step <= 6; step++) {
        straightLoss.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      straight = arrays(s.policy().trainableParameters());
    }
    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("lora-run").toString(), null);
    List<Double> resumedLoss = new ArrayList<>();
    try (TrainingSession<?> s = open(cfg, 6, GradientReducer.SINGLE, Optional.empty())) {
      for (int step = 1; step <= 3; step++) {
        resumedLoss.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      store.save(3, s.checkpoint(3, s.cursor()));
      // draw from torch's generator as other work in the JVM would
      s.step(4);
    }
    Checkpoint c = store.latestValid().orElseThrow();
    assertTrue(c.files().contains("adapter_config.json"), c.files().toString());
    assertTrue(c.files().contains("adapter_model.safetensors"), c.files().toString());
    assertFalse(c.files().stream().anyMatch(f -> f.startsWith("model")), "no copy of the frozen base");
    Map<String, float[]> resumed;
    try (TrainingSession<?> s = open(cfg, 6, GradientReducer.SINGLE, Optional.of(c))) {
      assertEquals(3, s.stepsDone());
      for (int step = 4; step <= 6; step++) {
        resumedLoss.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      resumed = arrays(s.policy().trainableParameters());
    }
    assertEquals(straightLoss, resumedLoss);
    for (String name : straight.keySet()) {
      assertArrayEquals(straight.get(name), resumed.get(name), 0f, name + " differs after resuming");
    }
    // and dropout did act: without it the run ends elsewhere
    try (TrainingSession<?> s = open(loraConfig(), 6, GradientReducer.SINGLE, Optional.empty())) {
      for (int step = 1; step <= 6; step++) {
        s.step(step);
      }
      assertTrue(TrainingFixtures.maxDifference(straight, arrays(s.policy().trainableParameters())) > 1e-4);
    }
  }

  @Test
  void aResumeOnAnotherBaseIsRefused() {
    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("other-base-run").toString(), null);
    try (TrainingSession<?> s = open(loraConfig(), 4, GradientReducer.SINGLE, Optional.empty())) {
      s.step(1);
      store.save(1, s.checkpoint(1, s.cursor()));
    }
    String other = TrainingFixtures.writeModel(tmp.resolve("other-model"), TrainingFixtures.SMALL, 6);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(
        loraConfig("model.path=" + other), 4, GradientReducer.SINGLE, store.latestValid()));
    assertTrue(e.getMessage().contains("holds an adapter trained on a base with fingerprint"), e.getMessage());
  }

  /**
   * DPO on top of an adapter (an SFT adapter, here one a short LoRA run trained): the policy starts from it and the
   * reference is base + it, so step 1 is ln 2 although the adapter moves the log-probs away from the base's.
   */
  @Test
  void dpoOnTopOfAnAdapterStartsFromItAndUsesBasePlusItAsTheReference() {
    String adapter = tmp.resolve("sft-adapter").toString();
    try (TrainingSession<?> s = open(loraConfig(), 3, GradientReducer.SINGLE, Optional.empty())) {
      for (int step = 1; step <= 3; step++) {
        s.step(step);
      }
      s.policy().saveAdapter(adapter, STORAGE);
    }
    List<PreparedPair> few = TrainingFixtures.pairs("t", 4, TrainingFixtures.SMALL.vocabSize(), 1);
    double base;
    double withAdapter;
    try (CausalLM m = CausalLM.load(model, STORAGE, CausalLM.device("cpu"));
         ai.djl.ndarray.NDManager scope = ai.djl.ndarray.NDManager.newBaseManager()) {
      io.sparkdpo.model.SequenceLogProbs lp = new io.sparkdpo.model.SequenceLogProbs(m);
      PreparedPair p = few.get(0);
      base = lp.compute(scope, List.of(p.promptIds()), List.of(p.chosenIds()), false).sums()[0];
      m.loadAdapter(adapter, STORAGE);
      withAdapter = lp.compute(scope, List.of(p.promptIds()), List.of(p.chosenIds()), false).sums()[0];
    }
    assertTrue(Math.abs(base - withAdapter) > 1e-3, "the adapter changes the model: " + base + " " + withAdapter);
    try (TrainingSession<?> s = open(loraConfig("model.adapter=" + adapter), 3, GradientReducer.SINGLE,
        Optional.empty())) {
      assertEquals(Math.log(2), s.evaluate().metrics().get(MetricNames.LOSS), 1e-6, "eval pairs before training");
      assertEquals(Math.log(2), s.step(1).metrics().get(MetricNames.LOSS), 1e-6, "reference = base + adapter");
      s.step(2);
      double after = s.evaluate().metrics().get(MetricNames.LOSS);
      assertTrue(Math.abs(after - Math.log(2)) > 1e-4, "the policy moved away from the frozen reference: " + after);
    }
  }
}
