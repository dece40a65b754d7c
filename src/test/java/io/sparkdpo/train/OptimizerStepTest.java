package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.sparkdpo.config.LrSchedulerType;
import io.sparkdpo.config.TrainSettings.LossType;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The update half of a step on a stand-in for the model whose log-probs are linear in the parameters,
 * {@code log pi(y) = F_y . w + G_y . v}, so the gradient of a log-prob is known in closed form.
 */
class OptimizerStepTest {
  private static final int PAIRS = 4;
  private static final int D = 5;
  private static final int E = 3;
  private static final AdamW.Hyper HYPER = new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01);
  private static final LearningRateSchedule SCHEDULE = new LearningRateSchedule(LrSchedulerType.CONSTANT, 0.05, 0, 10);

  /** Fixed features of 4 pairs and initial parameters, all seeded. */
  private static final class Data {
    final float[] fc = values(PAIRS * D, 1);
    final float[] fr = values(PAIRS * D, 2);
    final float[] gc = values(PAIRS * E, 3);
    final float[] gr = values(PAIRS * E, 4);
    final float[] w0 = values(D, 5);
    final float[] v0 = values(E, 6);
    final List<String> ids = List.of("pair-a", "pair-b", "pair-c", "pair-d");

    static float[] values(int n, long seed) {
      SeededRng rng = new SeededRng(seed);
      float[] out = new float[n];
      for (int i = 0; i < n; i++) {
        out[i] = (float) (rng.nextDouble() * 2 - 1);
      }
      return out;
    }
  }

  /** One replica: its own parameters, optimizer, accumulator. */
  private static final class Replica implements AutoCloseable {
    final NDManager manager = NDManager.newBaseManager();
    final NDArray w;
    final NDArray v;
    final AdamW adamw;
    final GradientAccumulator acc;
    final Data data;
    final float[] refChosen;
    final float[] refRejected;

    Replica(Data data) {
      this.data = data;
      w = manager.create(data.w0);
      v = manager.create(data.v0);
      w.setName("layer.weight");
      v.setName("layer.norm.weight");
      w.setRequiresGradient(true);
      v.setRequiresGradient(true);
      LinkedHashMap<String, NDArray> params = new LinkedHashMap<>();
      params.put("layer.weight", w);
      params.put("layer.norm.weight", v);
      adamw = new AdamW(params, HYPER, AdamW.decaysByDefault());
      acc = new GradientAccumulator(List.of(w, v));
      // The reference is the initial policy (as after SFT, before DPO).
      try (NDManager s = manager.newSubManager()) {
        refChosen = logps(s, w, v, data.fc, data.gc, 0, PAIRS).toFloatArray();
        refRejected = logps(s, w, v, data.fr, data.gr, 0, PAIRS).toFloatArray();
      }
    }

    static NDArray logps(NDManager s, NDArray w, NDArray v, float[] f, float[] g, int from, int to) {
      NDArray fm = s.create(java.util.Arrays.copyOfRange(f, from * D, to * D), new Shape(to - from, D));
      NDArray gm = s.create(java.util.Arrays.copyOfRange(g, from * E, to * E), new Shape(to - from, E));
      return fm.matMul(w).add(gm.matMul(v));
    }

    /** Forward + backward of pairs [from, to) with the summed loss, as one micro-batch. */
    DpoStats microBatch(DpoLoss loss, int from, int to) {
      return microBatch(loss, from, to, 1.0);
    }

    /** The same, back-propagating the loss times {@code lossScale} (float16 loss scaling). */
    DpoStats microBatch(DpoLoss loss, int from, int to, double lossScale) {
      try (NDManager s = manager.newSubManager();
           GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        NDArray pc = logps(s, w, v, data.fc, data.gc, from, to);
        NDArray pr = logps(s, w, v, data.fr, data.gr, from, to);
        NDArray rc = s.create(java.util.Arrays.copyOfRange(refChosen, from, to));
        NDArray rr = s.create(java.util.Arrays.copyOfRange(refRejected, from, to));
        {
          DpoOutput out = loss.compute(pc, pr, rc, rr);
          gc.backward(lossScale == 1.0 ? out.losses().sum() : out.losses().sum().mul(lossScale));
          acc.addMicroBatch(to - from);
          return out.stats();
        }
      }
    }

    @Override
    public void close() {
      acc.close();
      adamw.close();
      manager.close();
    }
  }

  private static final DpoLoss SIGMOID = new DpoLoss(LossType.SIGMOID, 0.1, 0);

  @Test
  void atTheReferenceTheModelGradientIsMinusHalfBetaTimesTheLogProbGradientDifference() {
    Data data = new Data();
    try (Replica r = new Replica(data)) {
      DpoStats stats = r.microBatch(SIGMOID, 0, PAIRS);
      assertEquals(Math.log(2), stats.lossSum() / stats.pairs(), 1e-6);
      r.acc.scale(1.0 / r.acc.items());
      // d log pi(y)/dw = F_y, so d loss/dw = -(beta/2) * mean_i (F_w,i - F_l,i); likewise for v with G.
      float[] expectedW = new float[D];
      float[] expectedV = new float[E];
      for (int i = 0; i < PAIRS; i++) {
        for (int j = 0; j < D; j++) {
          expectedW[j] += (float) (-(0.1 / 2) * (data.fc[i * D + j] - data.fr[i * D + j]) / PAIRS);
        }
        for (int j = 0; j < E; j++) {
          expectedV[j] += (float) (-(0.1 / 2) * (data.gc[i * E + j] - data.gr[i * E + j]) / PAIRS);
        }
      }
      assertArrayEquals(expectedW, r.acc.gradients().get(0).toFloatArray(), 1e-7f);
      assertArrayEquals(expectedV, r.acc.gradients().get(1).toFloatArray(), 1e-7f);
      r.acc.zero();
    }
  }

  @Test
  void twoMicroBatchesGiveTheUpdateOfOneBatch() {
    Data data = new Data();
    try (Replica whole = new Replica(data); Replica split = new Replica(data)) {
      OptimizerStep oneStep = new OptimizerStep(whole.adamw, SCHEDULE, 1.0, GradientReducer.SINGLE);
      OptimizerStep twoSteps = new OptimizerStep(split.adamw, SCHEDULE, 1.0, GradientReducer.SINGLE);
      for (long step = 0; step < 3; step++) {
        DpoStats a = whole.microBatch(SIGMOID, 0, PAIRS);
        DpoStats b = split.microBatch(SIGMOID, 0, 2).plus(split.microBatch(SIGMOID, 2, PAIRS));
        assertEquals(2, split.acc.microBatches());
        Golden.assertClose("loss", a.lossSum(), b.lossSum(), 1e-6);
        OptimizerStep.Result ra = oneStep.apply(step, whole.acc, PAIRS, data.ids);
        OptimizerStep.Result rb = twoSteps.apply(step, split.acc, PAIRS, data.ids);
        Golden.assertClose("grad norm", ra.gradNorm(), rb.gradNorm(), 1e-6);
        assertEquals(0.05, ra.learningRate());
      }
      Golden.assertClose("w", whole.w.toFloatArray(), split.w.toFloatArray(), 1e-6);
      Golden.assertClose("v", whole.v.toFloatArray(), split.v.toFloatArray(), 1e-6);
      assertTrue(whole.w.toFloatArray()[0] != new Data().w0[0], "the parameters moved");
    }
  }

  @Test
  void twoReplicasWithAnAllReduceMatchOneReplicaWithTheGlobalBatch() throws Exception {
    Data data = new Data();
    try (Replica single = new Replica(data); Replica r0 = new Replica(data); Replica r1 = new Replica(data)) {
      OptimizerStep singleStep = new OptimizerStep(single.adamw, SCHEDULE, 1.0, GradientReducer.SINGLE);
      InMemoryAllReduce ring = new InMemoryAllReduce(2);
      OptimizerStep s0 = new OptimizerStep(r0.adamw, SCHEDULE, 1.0, ring);
      OptimizerStep s1 = new OptimizerStep(r1.adamw, SCHEDULE, 1.0, ring);
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try {
        for (long step = 0; step < 3; step++) {
          single.microBatch(SIGMOID, 0, PAIRS);
          double singleNorm = singleStep.apply(step, single.acc, PAIRS, data.ids).gradNorm();
          // Backward passes one after the other (one gradient collector per JVM), updates concurrently.
          r0.microBatch(SIGMOID, 0, 2);
          r1.microBatch(SIGMOID, 2, PAIRS);
          long s = step;
          Future<OptimizerStep.Result> f0 = pool.submit(() -> s0.apply(s, r0.acc, PAIRS, data.ids.subList(0, 2)));
          Future<OptimizerStep.Result> f1 = pool.submit(() -> s1.apply(s, r1.acc, PAIRS, data.ids.subList(2, 4)));
          double n0 = f0.get(30, TimeUnit.SECONDS).gradNorm();
          double n1 = f1.get(30, TimeUnit.SECONDS).gradNorm();
          assertEquals(n0, n1, 0.0, "replicas see the same reduced gradient");
          Golden.assertClose("grad norm vs single", singleNorm, n0, 1e-6);
        }
      } finally {
        pool.shutdownNow();
      }
      assertArrayEquals(r0.w.toFloatArray(), r1.w.toFloatArray(), 0f, "replicas stay identical");
      assertArrayEquals(r0.v.toFloatArray(), r1.v.toFloatArray(), 0f);
      Golden.assertClose("w vs single replica", single.w.toFloatArray(), r0.w.toFloatArray(), 1e-6);
      Golden.assertClose("v vs single replica", single.v.toFloatArray(), r0.v.toFloatArray(), 1e-6);
    }
  }

  @Test
  void nonFiniteGradientRefusesTheStepNamingStepAndPairs() {
    Data data = new Data();
    data.fc[3] = Float.NaN;
    // The replica's reference log-probs are finite; this step's forward reads a NaN feature.
    try (Replica poisoned = new Replica(new Data())) {
      float[] w0 = poisoned.w.toFloatArray();
      OptimizerStep step = new OptimizerStep(poisoned.adamw, SCHEDULE, 1.0, GradientReducer.SINGLE);
      try (NDManager s = poisoned.manager.newSubManager()) {
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          NDArray pc = Replica.logps(s, poisoned.w, poisoned.v, data.fc, data.gc, 0, PAIRS);
          NDArray pr = Replica.logps(s, poisoned.w, poisoned.v, data.fr, data.gr, 0, PAIRS);
          gc.backward(SIGMOID.compute(pc, pr, s.create(poisoned.refChosen), s.create(poisoned.refRejected))
              .losses().sum());
        }
        poisoned.acc.addMicroBatch(PAIRS);
      }
      NonFiniteException e = assertThrows(NonFiniteException.class, () -> step.apply(7, poisoned.acc, PAIRS,
          data.ids));
      assertEquals(7, e.step());
      assertEquals("gradient", e.quantity());
      assertEquals(data.ids, e.pairIds());
      assertTrue(e.getMessage().startsWith("step 7: non-finite gradient (NaN); the update was refused. Pairs of the "
          + "batch (4): pair-a, pair-b, pair-c, pair-d"), e.getMessage());
      assertArrayEquals(w0, poisoned.w.toFloatArray(), 0f, "parameters untouched");
      assertEquals(0, poisoned.adamw.stepCount(), "optimizer untouched");
      for (NDArray g : poisoned.acc.gradients()) {
        for (float x : g.toFloatArray()) {
          assertEquals(0f, x, "gradients are zeroed, NaN included, for whatever comes next");
        }
      }
      poisoned.acc.zero();
    }
  }

  @Test
  void aReplicaWithNonFiniteGradientsStopsBeforeTheAllReduce() {
    Data data = new Data();
    try (Replica r = new Replica(data)) {
      r.microBatch(SIGMOID, 0, PAIRS);
      try (GradMode ignored = GradMode.off()) {
        r.acc.gradients().get(1).set(new NDIndex("0"), Float.POSITIVE_INFINITY);
      }
      GradientReducer mustNotBeCalled = new GradientReducer() {
        @Override
        public int worldSize() {
          return 2;
        }

        @Override
        public void allReduceMean(FloatBuffer direct) {
          fail("the all-reduce ran with a non-finite gradient");
        }
      };
      NonFiniteException e = assertThrows(NonFiniteException.class,
          () -> new OptimizerStep(r.adamw, SCHEDULE, 1.0, mustNotBeCalled).apply(0, r.acc, 8, data.ids));
      assertTrue(e.getMessage().contains("non-finite gradient (Infinity)"), e.getMessage());
    }
  }

  @Test
  void float16LossScalingSkipsANonFiniteStepHalvesTheScaleAndTheNextStepIsTheUnscaledUpdate() {
    Data data = new Data();
    try (Replica plain = new Replica(data); Replica scaled = new Replica(data)) {
      LossScaler scaler = LossScaler.dynamic();
      OptimizerStep withScaling = new OptimizerStep(scaled.adamw, SCHEDULE, 1.0, GradientReducer.SINGLE,
          GradientBuckets.DEFAULT_BUCKET_BYTES, scaler);
      float[] w0 = scaled.w.toFloatArray();
      scaled.microBatch(SIGMOID, 0, PAIRS, scaler.scale());
      try (GradMode ignored = GradMode.off()) {
        scaled.acc.gradients().get(0).set(new NDIndex("1"), Float.POSITIVE_INFINITY); // a float16 overflow
      }
      OptimizerStep.Result skipped = withScaling.apply(0, scaled.acc, PAIRS, data.ids);
      assertTrue(skipped.skipped());
      assertArrayEquals(w0, scaled.w.toFloatArray(), 0f, "no update on a skipped step");
      assertEquals(0, scaled.adamw.stepCount());
      assertEquals(LossScaler.INITIAL_SCALE / 2, scaler.scale());
      assertEquals(1, scaler.skippedSteps());
      for (float x : scaled.acc.gradients().get(0).toFloatArray()) {
        assertEquals(0f, x, "gradients zeroed after the skip");
      }
      // Loop step 1 is the optimizer's first update: the loss scale (a power of two) comes off exactly, so it is
      // bit for bit the unscaled replica's first update.
      scaled.microBatch(SIGMOID, 0, PAIRS, scaler.scale());
      OptimizerStep.Result applied = withScaling.apply(1, scaled.acc, PAIRS, data.ids);
      plain.microBatch(SIGMOID, 0, PAIRS);
      OptimizerStep.Result reference = new OptimizerStep(plain.adamw, SCHEDULE, 1.0, GradientReducer.SINGLE)
          .apply(0, plain.acc, PAIRS, data.ids);
      assertTrue(!applied.skipped() && !reference.skipped());
      assertEquals(reference.gradNorm(), applied.gradNorm());
      assertArrayEquals(plain.w.toFloatArray(), scaled.w.toFloatArray(), 0f);
      assertArrayEquals(plain.v.toFloatArray(), scaled.v.toFloatArray(), 0f);
      assertEquals(1, scaled.adamw.stepCount());
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> withScaling.apply(5, scaled.acc,
          PAIRS, data.ids));
      assertTrue(e.getMessage().contains("taken 1 steps but this is step 5 with 1 skipped"), e.getMessage());
    }
  }

  @Test
  void withFloat16LossScalingNonFiniteGradientsGoThroughTheAllReduceSoEveryReplicaSkips() {
    Data data = new Data();
    try (Replica r = new Replica(data)) {
      r.microBatch(SIGMOID, 0, PAIRS);
      try (GradMode ignored = GradMode.off()) {
        r.acc.gradients().get(1).set(new NDIndex("0"), Float.NaN);
      }
      int[] calls = new int[1];
      GradientReducer twoReplicas = new GradientReducer() {
        @Override
        public int worldSize() {
          return 2;
        }

        @Override
        public void allReduceMean(FloatBuffer direct) {
          calls[0]++; // the other replica's identical gradients: the mean is this replica's
        }
      };
      LossScaler scaler = LossScaler.dynamic();
      OptimizerStep.Result result = new OptimizerStep(r.adamw, SCHEDULE, 1.0, twoReplicas,
          GradientBuckets.DEFAULT_BUCKET_BYTES, scaler).apply(0, r.acc, 8, data.ids);
      assertEquals(1, calls[0], "the all-reduce ran, so the other replicas see the NaN too");
      assertTrue(result.skipped());
      assertEquals(0, r.adamw.stepCount());
    }
  }

  @Test
  void theLossScaleDoublesAfter2000GoodStepsAndItsStateRoundTrips() {
    LossScaler scaler = LossScaler.dynamic();
    scaler.update(false);
    for (int i = 0; i < LossScaler.GROWTH_INTERVAL - 1; i++) {
      scaler.update(true);
    }
    assertEquals(32768.0, scaler.scale());
    scaler.update(true);
    assertEquals(65536.0, scaler.scale(), "doubled after 2000 good steps in a row");
    scaler.update(true);
    LossScaler resumed = LossScaler.dynamic();
    resumed.restore(scaler.state(), "test");
    assertEquals(scaler.state(), resumed.state());
    assertEquals(new LossScaler.State(65536.0, 1, 1), resumed.state());
    assertThrows(IllegalArgumentException.class, () -> LossScaler.dynamic().restore(null, "checkpoint-5"));
    LossScaler off = LossScaler.off();
    assertEquals(1.0, off.scale());
    assertEquals(null, off.state());
  }

  @Test
  void repeatedStepsKeepTheLiveArrayCountFlat() {
    Data data = new Data();
    try (Replica r = new Replica(data)) {
      OptimizerStep step = new OptimizerStep(r.adamw, SCHEDULE, 0.01, GradientReducer.SINGLE);
      r.microBatch(SIGMOID, 0, PAIRS);
      step.apply(0, r.acc, PAIRS, data.ids);
      int params = r.manager.getManagedArrays().size();
      int optimizer = r.adamw.liveArrays();
      for (long s = 1; s < 10; s++) {
        r.microBatch(SIGMOID, 0, 2);
        r.microBatch(SIGMOID, 2, PAIRS);
        step.apply(s, r.acc, PAIRS, data.ids);
        assertEquals(params, r.manager.getManagedArrays().size(), "arrays left in the model's manager at step " + s);
        assertEquals(optimizer, r.adamw.liveArrays());
      }
    }
  }

  @Test
  void anOptimizerOutOfStepWithTheLoopIsAnError() {
    Data data = new Data();
    try (Replica r = new Replica(data)) {
      r.microBatch(SIGMOID, 0, PAIRS);
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> new OptimizerStep(r.adamw, SCHEDULE, 1.0, GradientReducer.SINGLE).apply(3, r.acc, PAIRS, data.ids));
      assertTrue(e.getMessage().contains("taken 0 steps but this is step 3"), e.getMessage());
    }
  }

  @Test
  void nonFiniteLossIsNamedBeforeBackward() {
    NonFiniteException e = assertThrows(NonFiniteException.class,
        () -> NonFiniteException.requireFinite(12, "loss", Double.NaN, List.of("x1", "x2")));
    assertEquals("step 12: non-finite loss (NaN); the update was refused. Pairs of the batch (2): x1, x2",
        e.getMessage());
    List<String> many = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      many.add("p" + i);
    }
    NonFiniteException big = new NonFiniteException(1, "loss", Double.POSITIVE_INFINITY, many);
    assertTrue(big.getMessage().endsWith("p63, ... and 36 more"), big.getMessage());
    assertEquals(100, big.pairIds().size());
  }

  /** W replicas in one JVM: each call deposits its buffer, waits for all, and takes the element-wise mean. */
  static final class InMemoryAllReduce implements GradientReducer {
    private final int world;
    private final CyclicBarrier deposited;
    private final CyclicBarrier collected;
    private final List<float[]> slots = new ArrayList<>();
    private final ThreadLocal<Integer> rank = new ThreadLocal<>();
    private int nextRank;

    InMemoryAllReduce(int world) {
      this.world = world;
      this.deposited = new CyclicBarrier(world);
      this.collected = new CyclicBarrier(world);
      for (int i = 0; i < world; i++) {
        slots.add(null);
      }
    }

    @Override
    public int worldSize() {
      return world;
    }

    @Override
    public void allReduceMean(FloatBuffer direct) {
      int r;
      synchronized (this) {
        if (rank.get() == null) {
          rank.set(nextRank++ % world);
        }
        r = rank.get();
      }
      float[] mine = new float[direct.remaining()];
      direct.duplicate().get(mine);
      slots.set(r, mine);
      try {
        deposited.await(30, TimeUnit.SECONDS);
        float[] mean = new float[mine.length];
        for (float[] s : slots) {
          for (int i = 0; i < mean.length; i++) {
            mean[i] += s[i];
          }
        }
        for (int i = 0; i < mean.length; i++) {
          mean[i] /= world;
        }
        direct.duplicate().put(mean);
        collected.await(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }
}
