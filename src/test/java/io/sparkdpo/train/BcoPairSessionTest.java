package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A weighted loss list with bco_pair and rpo_alpha in the training loop (one replica, no Spark): the in-loop reference
 * makes step 1 analytic, the checkpoint carries bco_pair's running mean, and a resumed run continues bit for bit.
 */
class BcoPairSessionTest {
  private static final Storage STORAGE = Storage.local();
  @TempDir
  static Path tmp;
  static String model;
  static String data;

  @BeforeAll
  static void inputs() {
    model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 5);
    List<PreparedPair> train = TrainingFixtures.pairs("t", 24, TrainingFixtures.SMALL.vocabSize(), 1);
    data = TrainingFixtures.writePrepared(tmp.resolve("data"), List.of(train),
        TrainingFixtures.pairs("e", 6, TrainingFixtures.SMALL.vocabSize(), 2), null);
  }

  private static JobConfig config(String... more) {
    List<String> o = new ArrayList<>(List.of("model.path=" + model, "train.reference_mode=in_loop",
        "train.learning_rate=0.001", "train.beta=0.1", "train.per_device_train_batch_size=2",
        "train.gradient_accumulation_steps=2"));
    o.addAll(List.of(more));
    return TrainingFixtures.config(o.toArray(String[]::new));
  }

  private static JobConfig bco() {
    return config("train.loss_type=[sigmoid, bco_pair]", "train.loss_weights=[1.0, 0.5]");
  }

  private static TrainingSession<?> open(JobConfig cfg, Optional<Checkpoint> resume) {
    PreparedData d = PreparedData.open(STORAGE, data);
    SessionSpec spec = SessionSpec.dpo(cfg.model(), cfg.train(), cfg.model().path(), 6, d.trainRows());
    return TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"), d.trainFiles(), d.evalFiles(),
        GradientReducer.SINGLE, resume);
  }

  @Test
  void stepOneIsAnalyticAndTheNllTermIsLogged() {
    try (TrainingSession<?> s = open(bco(), Optional.empty())) {
      // Policy = reference: sigmoid gives ln 2; bco_pair's rewards and running mean are 0, so 2 ln 2, weighted 0.5.
      assertEquals(2 * Math.log(2), s.step(1).metrics().get(MetricNames.LOSS), 1e-6);
    }
    try (TrainingSession<?> s = open(config("train.rpo_alpha=0.5"), Optional.empty())) {
      Map<String, Double> m = s.step(1).metrics();
      double nll = m.get(MetricNames.NLL_LOSS);
      assertTrue(nll > 0 && Double.isFinite(nll), "nll_loss " + nll);
      assertEquals(Math.log(2) + 0.5 * nll, m.get(MetricNames.LOSS), 1e-5);
      assertEquals(m.get(MetricNames.NLL_LOSS), nll);
      assertTrue(s.evaluate().metrics().containsKey(MetricNames.NLL_LOSS), "evaluation logs it too");
    }
  }

  @Test
  void theRunningMeanTravelsWithTheCheckpointAndAResumeContinuesBitForBit() {
    List<Double> straightLosses = new ArrayList<>();
    Map<String, float[]> straight;
    try (TrainingSession<?> s = open(bco(), Optional.empty())) {
      for (int step = 1; step <= 6; step++) {
        straightLosses.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      straight = TrainingSessionTest.parameters(s);
    }
    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("resume").toString(), null);
    try (TrainingSession<?> s = open(bco(), Optional.empty())) {
      for (int step = 1; step <= 3; step++) {
        s.step(step);
      }
      store.save(3, s.checkpoint(3, s.cursor()));
    }
    Checkpoint checkpoint = store.latestValid().orElseThrow();
    RunningMean.State state = checkpoint.readJson(DpoObjective.BCO_RUNNING_MEAN, RunningMean.State.class);
    assertEquals(6, state.count(), "3 steps of 2 micro-batches");
    assertTrue(state.mean() != 0, "training moved the rewards off 0");
    try (TrainingSession<?> s = open(bco(), Optional.of(checkpoint))) {
      for (int step = 4; step <= 6; step++) {
        assertEquals(straightLosses.get(step - 1), s.step(step).metrics().get(MetricNames.LOSS), 0.0, "step " + step);
      }
      Map<String, float[]> resumed = TrainingSessionTest.parameters(s);
      for (String name : straight.keySet()) {
        assertArrayEquals(straight.get(name), resumed.get(name), 0f, name + " differs after resuming");
      }
    }
  }

  @Test
  void aCheckpointWithoutTheRunningMeanIsRefusedForBcoPair() {
    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("sigmoid").toString(), null);
    try (TrainingSession<?> s = open(config(), Optional.empty())) {
      s.step(1);
      store.save(1, s.checkpoint(1, s.cursor()));
    }
    Checkpoint checkpoint = store.latestValid().orElseThrow();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> open(bco(), Optional.of(checkpoint)).close());
    assertTrue(e.getMessage().contains("has no bco_running_mean.json"), e.getMessage());
  }
}
