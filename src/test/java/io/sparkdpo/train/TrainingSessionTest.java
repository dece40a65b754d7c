package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The training step on a real (small) CausalLM, one replica, no Spark. */
class TrainingSessionTest {
  private static final Storage STORAGE = Storage.local();
  @TempDir
  static Path tmp;
  static String model;
  static String data;
  static List<PreparedPair> trainPairs;

  @BeforeAll
  static void inputs() {
    model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 5);
    trainPairs = TrainingFixtures.pairs("t", 24, TrainingFixtures.SMALL.vocabSize(), 1);
    data = TrainingFixtures.writePrepared(tmp.resolve("data"), List.of(trainPairs),
        TrainingFixtures.pairs("e", 6, TrainingFixtures.SMALL.vocabSize(), 2), null);
  }

  static JobConfig dpoConfig(String... more) {
    List<String> o = new ArrayList<>(List.of("model.path=" + model, "train.reference_mode=in_loop",
        "train.learning_rate=0.001", "train.warmup_steps=2", "train.beta=0.1"));
    o.addAll(List.of(more));
    return TrainingFixtures.config(o.toArray(String[]::new));
  }

  static TrainingSession<?> open(JobConfig cfg, String dataDir, long totalSteps, Optional<Checkpoint> resume) {
    PreparedData d = PreparedData.open(STORAGE, dataDir);
    SessionSpec spec = SessionSpec.dpo(cfg.model(), cfg.train(), cfg.model().path(), totalSteps, d.trainRows());
    return TrainingSession.open(spec, STORAGE, CausalLM.device("cpu"), d.trainFiles(), d.evalFiles(),
        GradientReducer.SINGLE, resume);
  }

  static Map<String, float[]> parameters(TrainingSession<?> s) {
    Map<String, float[]> out = new HashMap<>();
    s.policy().parameters().forEach((name, p) -> out.put(name, p.getArray().toFloatArray()));
    return out;
  }

  @Test
  void oneBatchOfEightEqualsFourAccumulatedMicroBatchesOfTwo() {
    Map<String, float[]> whole;
    Map<String, float[]> start;
    List<Double> lossWhole = new ArrayList<>();
    try (TrainingSession<?> s = open(dpoConfig("train.per_device_train_batch_size=8"), data, 5, Optional.empty())) {
      start = parameters(s);
      for (int step = 1; step <= 5; step++) {
        lossWhole.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      whole = parameters(s);
    }
    Map<String, float[]> accumulated;
    List<Double> lossAccumulated = new ArrayList<>();
    try (TrainingSession<?> s = open(dpoConfig("train.per_device_train_batch_size=2",
        "train.gradient_accumulation_steps=4"), data, 5, Optional.empty())) {
      for (int step = 1; step <= 5; step++) {
        lossAccumulated.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      accumulated = parameters(s);
    }
    assertTrue(TrainingFixtures.maxDifference(start, whole) > 1e-3, "training moved the parameters");
    double diff = TrainingFixtures.maxDifference(whole, accumulated);
    assertTrue(diff < 1e-5, "max parameter difference " + diff);
    for (int i = 0; i < 5; i++) {
      assertEquals(lossWhole.get(i), lossAccumulated.get(i), 1e-6, "loss at step " + (i + 1));
    }
    assertEquals(Math.log(2), lossWhole.get(0), 1e-6, "policy = reference at step 1");
    assertTrue(lossWhole.get(4) < lossWhole.get(0), lossWhole.toString());
  }

  @Test
  void resumingInAFreshSessionFromACheckpointGivesTheBitsOfAStraightRunAndSeesEveryPairOncePerEpoch() {
    JobConfig cfg = dpoConfig("train.per_device_train_batch_size=4");
    List<List<String>> straightIds = new ArrayList<>();
    Map<String, float[]> straight;
    try (TrainingSession<?> s = open(cfg, data, 10, Optional.empty())) {
      for (int step = 1; step <= 10; step++) {
        straightIds.add(s.step(step).exampleIds());
      }
      straight = parameters(s);
    }
    List<List<String>> resumedIds = new ArrayList<>();
    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("resume-run").toString(), null);
    try (TrainingSession<?> s = open(cfg, data, 10, Optional.empty())) {
      for (int step = 1; step <= 5; step++) {
        resumedIds.add(s.step(step).exampleIds());
      }
      store.save(5, s.checkpoint(5, s.cursor()));
    }
    Map<String, float[]> resumed;
    try (TrainingSession<?> s = open(cfg, data, 10, store.latestValid())) {
      assertEquals(5, s.stepsDone());
      for (int step = 6; step <= 10; step++) {
        resumedIds.add(s.step(step).exampleIds());
      }
      resumed = parameters(s);
    }
    assertEquals(straightIds, resumedIds);
    for (String name : straight.keySet()) {
      assertArrayEquals(straight.get(name), resumed.get(name), 0f, name + " differs after resuming");
    }
    // 24 pairs, 4 per step: steps 1-6 are the first epoch, across the interruption after step 5.
    List<String> firstEpoch = resumedIds.subList(0, 6).stream().flatMap(List::stream).toList();
    Set<String> all = new HashSet<>();
    trainPairs.forEach(p -> all.add(p.pairId()));
    assertEquals(24, firstEpoch.size());
    assertEquals(all, new HashSet<>(firstEpoch), "every pair exactly once in the epoch");
  }

  /** Reference log-probs of each pair under the model at {@code model}, one pair per forward pass. */
  static List<PreparedPair> withReferenceOf(List<PreparedPair> pairs) {
    List<PreparedPair> out = new ArrayList<>();
    try (CausalLM reference = CausalLM.load(model, STORAGE, CausalLM.device("cpu"));
         ai.djl.ndarray.NDManager m = ai.djl.ndarray.NDManager.newBaseManager()) {
      io.sparkdpo.model.SequenceLogProbs lp = new io.sparkdpo.model.SequenceLogProbs(reference);
      for (PreparedPair p : pairs) {
        var r = lp.computePairs(m, List.of(p.promptIds()), List.of(p.chosenIds()), List.of(p.rejectedIds()), false);
        out.add(TrainingFixtures.withReference(p, r.chosen().sums()[0], r.rejected().sums()[0]));
      }
    }
    return out;
  }

  @Test
  void precomputedReferenceLogProbsTrainLikeTheInLoopReference() {
    String referenced = TrainingFixtures.writePrepared(tmp.resolve("referenced"),
        List.of(withReferenceOf(trainPairs)), withReferenceOf(TrainingFixtures.pairs("e", 6, 512, 2)),
        io.sparkdpo.model.ModelFolder.fingerprint(STORAGE, model));
    Map<String, float[]> inLoop;
    List<Double> inLoopLoss = new ArrayList<>();
    try (TrainingSession<?> s = open(dpoConfig("train.per_device_train_batch_size=4"), data, 3, Optional.empty())) {
      for (int step = 1; step <= 3; step++) {
        inLoopLoss.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      inLoop = parameters(s);
    }
    Map<String, float[]> precomputed;
    List<Double> precomputedLoss = new ArrayList<>();
    try (TrainingSession<?> s = open(dpoConfig("train.per_device_train_batch_size=4",
        "train.reference_mode=precomputed"), referenced, 3, Optional.empty())) {
      for (int step = 1; step <= 3; step++) {
        precomputedLoss.add(s.step(step).metrics().get(MetricNames.LOSS));
      }
      assertEquals(0.0, s.evaluate().metrics().get(MetricNames.REWARDS_CHOSEN), 1.0, "eval runs on referenced pairs");
      precomputed = parameters(s);
    }
    double diff = TrainingFixtures.maxDifference(inLoop, precomputed);
    assertTrue(diff < 1e-5, "max parameter difference " + diff);
    for (int i = 0; i < 3; i++) {
      assertEquals(inLoopLoss.get(i), precomputedLoss.get(i), 1e-6);
    }
  }

  @Test
  void precomputedLogProbsUnderTheLegacyColumnNamesTrainExactlyLikeTrlNamedOnes() {
    List<PreparedPair> train = trainPairs.stream()
        .map(p -> TrainingFixtures.withReference(p, -40 - p.chosenIds().length, -41 - p.rejectedIds().length)).toList();
    List<PreparedPair> eval = TrainingFixtures.pairs("e", 6, 512, 2).stream()
        .map(p -> TrainingFixtures.withReference(p, -30, -31)).toList();
    String fingerprint = io.sparkdpo.model.ModelFolder.fingerprint(STORAGE, model);
    List<List<Double>> losses = new ArrayList<>();
    for (boolean legacy : new boolean[] {false, true}) {
      String dir = TrainingFixtures.writePrepared(tmp.resolve(legacy ? "legacy-names" : "trl-names"), List.of(train),
          eval, fingerprint, legacy);
      List<Double> loss = new ArrayList<>();
      try (TrainingSession<?> s = open(dpoConfig("train.per_device_train_batch_size=4",
          "train.reference_mode=precomputed"), dir, 2, Optional.empty())) {
        for (int step = 1; step <= 2; step++) {
          loss.add(s.step(step).metrics().get(MetricNames.LOSS));
        }
        loss.add(s.evaluate().metrics().get(MetricNames.LOSS));
      }
      losses.add(loss);
    }
    // Precomputed mode refuses a pair without both columns, so equal losses mean both spellings were read alike.
    assertEquals(losses.get(0), losses.get(1));
  }

  @Test
  void precomputedModeRefusesPairsWithoutReferenceColumnsNamingFileRowAndColumn() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> open(
        dpoConfig("train.reference_mode=precomputed"), data, 3, Optional.empty()));
    assertTrue(e.getMessage().contains("train/shard-00000.parquet row 1 (pair t-0, from file:/synthetic.jsonl row 1): "
        + "column ref_chosen_logps is missing or null"), e.getMessage());
  }

  @Test
  void precomputedReferenceMustComeFromTheConfiguredReferenceModel() {
    List<PreparedPair> few = TrainingFixtures.pairs("f", 4, 512, 3).stream()
        .map(p -> TrainingFixtures.withReference(p, -10, -12)).toList();
    String referenced = TrainingFixtures.writePrepared(tmp.resolve("other-reference"), List.of(few), few, "ab12cd");
    PreparedData d = PreparedData.open(STORAGE, referenced);
    d.requireReferenceFrom(model, "ab12cd");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> d.requireReferenceFrom(model, "ef34"));
    assertTrue(e.getMessage().contains("were computed by a model with fingerprint ab12cd, but the configured reference "
        + "model " + model + " has fingerprint ef34"), e.getMessage());
    IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
        () -> PreparedData.open(STORAGE, data).requireReferenceFrom(model, "ef34"));
    assertTrue(none.getMessage().contains("holds no precomputed reference log-probs (its manifest has no "
        + "reference.model_fingerprint)"), none.getMessage());
  }

  /** Log-probs computed in bf16 do not equal a float32 policy's at step 0: the trainer asks for the same dtype. */
  @Test
  void precomputedReferenceMustBeInTheConfiguredDtype() {
    List<PreparedPair> few = TrainingFixtures.pairs("g", 4, 512, 3).stream()
        .map(p -> TrainingFixtures.withReference(p, -10, -12)).toList();
    String referenced = TrainingFixtures.writePrepared(tmp.resolve("float32-reference"), List.of(few), few, "ab12cd");
    PreparedData d = PreparedData.open(STORAGE, referenced);
    assertEquals("float32", d.referenceDtype(), "manifests without reference.dtype were computed in float32");
    d.requireReferenceFrom(model, "ab12cd", "float32");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> d.requireReferenceFrom(model, "ab12cd", "bfloat16"));
    assertTrue(e.getMessage().contains("were computed in float32, but this run's reference.dtype is bfloat16"),
        e.getMessage());
  }

  @Test
  void aNonFiniteLossRefusesTheStepNamingItAndItsPairsAndLeavesStateAndCheckpointUntouched() {
    // Pair order of epoch 0 (the sampler's seeded shuffle): poison the reference of the pair step 4 takes first.
    JobConfig cfg = dpoConfig("train.per_device_train_batch_size=4", "train.reference_mode=precomputed");
    int[] order = ShardSampler.permutation(24, SeededRng.derive(cfg.train().seed(),
        "shard-00000.parquet".hashCode()), 0);
    String poisoned = trainPairs.get(order[12]).pairId();
    List<PreparedPair> pairs = new ArrayList<>();
    for (PreparedPair p : trainPairs) {
      pairs.add(TrainingFixtures.withReference(p, p.pairId().equals(poisoned) ? Double.NaN : -20, -25));
    }
    String dir = TrainingFixtures.writePrepared(tmp.resolve("poisoned"), List.of(pairs), pairs.subList(0, 2), "x");
    CheckpointStore store = new CheckpointStore(STORAGE, tmp.resolve("poisoned-run").toString(), null);
    try (TrainingSession<?> s = open(cfg, dir, 10, Optional.empty())) {
      for (int step = 1; step <= 3; step++) {
        s.step(step);
        if (step == 2) {
          store.save(2, s.checkpoint(2, s.cursor()));
        }
      }
      byte[] checksumsBefore = STORAGE.readBytes(store.dirOf(2) + "/checksums.json");
      Map<String, float[]> before = parameters(s);
      NonFiniteException e = assertThrows(NonFiniteException.class, () -> s.step(4));
      assertEquals(4, e.step());
      assertEquals("loss", e.quantity());
      assertTrue(e.pairIds().contains(poisoned), e.pairIds().toString());
      assertTrue(e.getMessage().startsWith("step 4: non-finite loss (NaN); the update was refused. Pairs of the batch "
          + "(4): "), e.getMessage());
      assertEquals(3, s.stepsDone());
      assertEquals(0.0, TrainingFixtures.maxDifference(before, parameters(s)), "parameters untouched");
      for (NDArray p : s.parameterArrays()) {
        try (NDArray g = p.getGradient()) {
          assertEquals(0f, g.abs().sum().getFloat(), "gradients zeroed after the refusal");
        }
      }
      assertEquals(List.of(2L), store.committedSteps());
      assertEquals(2, store.latestValid().orElseThrow().step());
      assertArrayEquals(checksumsBefore, STORAGE.readBytes(store.dirOf(2) + "/checksums.json"));
    }
  }
}
