package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.ActivationCheckpoints;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code gradient_checkpointing: true} recomputes each decoder layer in backward: the DPO and SFT objectives' gradients
 * over accumulated micro-batches of right-padded pairs equal the plain step's (float32, 1e-5 relative to each
 * parameter's largest gradient), sessions train alike, and a checkpointed run resumes bit for bit.
 */
class GradientCheckpointingTest {
  private static final Storage STORAGE = Storage.local();
  /** Four layers, grouped-query attention, tied head. */
  private static final ModelConfig FOUR_LAYERS = ModelConfig.llama(512, 64, 128, 4, 4, 2, true);
  @TempDir
  static Path tmp;
  static String model;
  static String data;
  static List<PreparedPair> pairs;

  @BeforeAll
  static void inputs() {
    model = TrainingFixtures.writeModel(tmp.resolve("model"), FOUR_LAYERS, 9);
    pairs = TrainingFixtures.pairs("t", 16, FOUR_LAYERS.vocabSize(), 4);
    data = TrainingFixtures.writePrepared(tmp.resolve("data"), List.of(pairs),
        TrainingFixtures.pairs("e", 4, FOUR_LAYERS.vocabSize(), 5), null);
  }

  /**
   * The gradients one step accumulates over {@code micro}-sized micro-batches of {@code batch}, the way
   * TrainingSession runs them (forward, backward of the summed loss, the layers' recomputation).
   */
  static <E> float[][] stepGradients(CausalLM policy, Objective<E> objective, List<E> batch, int micro,
      boolean checkpointing) {
    try (NDManager root = NDManager.newBaseManager();
        GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
      for (int from = 0; from < batch.size(); from += micro) {
        try (NDManager scope = root.newSubManager();
            ActivationCheckpoints checkpoints = checkpointing ? policy.gradientCheckpointing(scope) : null) {
          collector.backward(objective.forward(scope, batch.subList(from, from + micro)).lossSum());
          if (checkpoints != null) {
            checkpoints.backward();
          }
        }
      }
    }
    return Gradients.take(policy);
  }

  static double assertClose(float[][] plain, float[][] checkpointed) {
    double worst = 0;
    for (int p = 0; p < plain.length; p++) {
      double scale = 0;
      double diff = 0;
      for (int i = 0; i < plain[p].length; i++) {
        scale = Math.max(scale, Math.abs(plain[p][i]));
        diff = Math.max(diff, Math.abs(plain[p][i] - checkpointed[p][i]));
      }
      assertTrue(scale > 0, "parameter " + p + " got no gradient");
      assertTrue(diff <= 1e-5 * Math.max(1, scale), "parameter " + p + " differs by " + diff + " of " + scale);
      worst = Math.max(worst, diff / Math.max(1, scale));
    }
    return worst;
  }

  @Test
  void dpoGradientsWithCheckpointingEqualThePlainStep() {
    JobConfig cfg = TrainingFixtures.config("model.path=" + model, "train.reference_mode=in_loop");
    try (CausalLM policy = CausalLM.load(model, STORAGE, CausalLM.device("cpu"));
         DpoObjective dpo = new DpoObjective(policy, CausalLM.load(model, STORAGE, CausalLM.device("cpu")),
             DpoLoss.of(cfg.train()))) {
      // Move the policy off the reference first, so the loss's gradient is not the symmetric step-0 one.
      try (GradMode ignored = GradMode.off()) {
        policy.parameters().values().forEach(p -> p.getArray().muli(1.1));
      }
      List<PreparedPair> batch = pairs.subList(0, 6);
      float[][] plain = stepGradients(policy, dpo, batch, 3, false);
      float[][] checkpointed = stepGradients(policy, dpo, batch, 3, true);
      System.out.println("DPO: largest relative gradient difference " + assertClose(plain, checkpointed));
    }
  }

  @Test
  void sftGradientsWithCheckpointingEqualThePlainStep() {
    List<LmExample> examples = new ArrayList<>();
    for (PreparedPair p : pairs.subList(0, 6)) {
      examples.add(new LmExample(p.pairId(), p.promptIds(), p.chosenIds()));
    }
    for (boolean completionOnly : new boolean[] {true, false}) {
      try (CausalLM policy = CausalLM.load(model, STORAGE, CausalLM.device("cpu"));
           SftObjective sft = new SftObjective(policy, completionOnly)) {
        float[][] plain = stepGradients(policy, sft, examples, 2, false);
        float[][] checkpointed = stepGradients(policy, sft, examples, 2, true);
        System.out.println("SFT completion_only=" + completionOnly + ": largest relative gradient difference "
            + assertClose(plain, checkpointed));
      }
    }
  }

  static TrainingSession<?> dpoSession(boolean checkpointing, long totalSteps, Optional<Checkpoint> resume) {
    JobConfig cfg = TrainingFixtures.config("model.path=" + model, "train.reference_mode=in_loop",
        "train.learning_rate=0.001", "train.warmup_steps=1", "train.per_device_train_batch_size=2",
        "train.gradient_accumulation_steps=2", "train.gradient_checkpointing=" + checkpointing);
    PreparedData d = PreparedData.open(STORAGE, data);
    SessionSpec spec = SessionSpec.dpo(cfg.model(), cfg.train(), cfg.model().path(), totalSteps, d.trainRows());
    return TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"), d.trainFiles(), d.evalFiles(),
        GradientReducer.SINGLE, resume);
  }

  static TrainingSession<?> sftSession(boolean checkpointing, long totalSteps) {
    JobConfig cfg = TrainingFixtures.config("model.path=" + model, "sft.learning_rate=0.001",
        "sft.per_device_train_batch_size=2", "sft.gradient_accumulation_steps=2",
        "sft.gradient_checkpointing=" + checkpointing);
    PreparedData d = PreparedData.open(STORAGE, data);
    SessionSpec spec = SessionSpec.sft(cfg.model(), cfg.sft(), SessionSpec.DataKind.PAIRS, totalSteps,
        d.trainRows());
    return TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"), d.trainFiles(), d.evalFiles(),
        GradientReducer.SINGLE, Optional.empty());
  }

  @Test
  void dpoAndSftSessionsTrainAlikeWithAndWithoutCheckpointing() {
    for (String stage : List.of("dpo", "sft")) {
      List<Double> plainLoss = new ArrayList<>();
      List<Double> checkpointedLoss = new ArrayList<>();
      Map<String, float[]> start;
      Map<String, float[]> plain;
      Map<String, float[]> checkpointed;
      try (TrainingSession<?> s = stage.equals("dpo") ? dpoSession(false, 4, Optional.empty()) : sftSession(false, 4)) {
        start = TrainingSessionTest.parameters(s);
        for (int step = 1; step <= 4; step++) {
          plainLoss.add(s.step(step).metrics().get(MetricNames.LOSS));
        }
        plain = TrainingSessionTest.parameters(s);
      }
      try (TrainingSession<?> s = stage.equals("dpo") ? dpoSession(true, 4, Optional.empty()) : sftSession(true, 4)) {
        for (int step = 1; step <= 4; step++) {
          checkpointedLoss.add(s.step(step).metrics().get(MetricNames.LOSS));
        }
        checkpointed = TrainingSessionTest.parameters(s);
      }
      assertTrue(TrainingFixtures.maxDifference(start, plain) > 1e-3, stage + ": training moved the parameters");
      double diff = TrainingFixtures.maxDifference(plain, checkpointed);
      assertTrue(diff < 1e-5, stage + ": max parameter difference " + diff);
      for (int i = 0; i < 4; i++) {
        assertEquals(plainLoss.get(i), checkpointedLoss.get(i), 1e-6, stage + " loss at step " + (i + 1));
      }
    }
  }

  @Test
  void aCheckpointedRunResumesBitForBit() {
    Map<String, float[]> straight;
    try (TrainingSession<?> s = dpoSession(true, 6, Optional.empty())) {
      for (int step = 1; step <= 6; step++) {
        s.step(step);
      }
      straight = TrainingSessionTest.parameters(s);
    }
    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("resume-run").toString(), null);
    try (TrainingSession<?> s = dpoSession(true, 6, Optional.empty())) {
      for (int step = 1; step <= 3; step++) {
        s.step(step);
      }
      store.save(3, s.checkpoint(3, s.cursor()));
    }
    Map<String, float[]> resumed;
    try (TrainingSession<?> s = dpoSession(true, 6, store.latestValid())) {
      assertEquals(3, s.stepsDone());
      for (int step = 4; step <= 6; step++) {
        s.step(step);
      }
      resumed = TrainingSessionTest.parameters(s);
    }
    for (String name : straight.keySet()) {
      assertArrayEquals(straight.get(name), resumed.get(name), 0f, name + " differs after resuming");
    }
  }
}
