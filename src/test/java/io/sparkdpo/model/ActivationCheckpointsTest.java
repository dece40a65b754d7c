package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import io.sparkdpo.testing.DirectMemoryChurn;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Activation checkpointing recomputes each decoder layer in backward: the gradients of a step must be those of the
 * plain recorded step (float32, within 1e-5 relative to each parameter's largest gradient), through the response
 * log-probs (DPO's path) and through full logits (SFT's), over accumulated micro-batches of right-padded sequences,
 * with the fused and the explicit ops, tied and untied heads, biases everywhere and a sliding-window mask.
 */
class ActivationCheckpointsTest {
  /** Tied head, grouped-query attention, 3 layers. */
  static final ModelConfig LLAMA = new ModelConfig("LlamaForCausalLM", "llama", 96, 32, 64, 3, 4, 2, 8, 2048, 1e-5,
      10000.0, true, false, false, false, 0, 0.2, 0, List.of(0), 1, "float32", Map.of(), RopeScaling.NONE);
  /** Untied head, q/k/v, o and MLP biases, a 4-token sliding window (so an attention mask), 3 layers. */
  static final ModelConfig WINDOWED = new ModelConfig("MistralForCausalLM", "mistral", 96, 32, 64, 3, 4, 2, 8, 2048,
      1e-5, 10000.0, false, true, true, true, 4, 0.2, 0, List.of(0), 1, "float32", Map.of(), RopeScaling.NONE);

  /** Largest |difference| / max(1, largest |plain gradient|) over all parameters seen by {@link #assertSame}. */
  private static double worst;

  /** A micro-batch of preference pairs: prompts of 1-6 tokens, responses of 1-7 (so rows are right-padded). */
  record Pairs(List<int[]> prompts, List<int[]> chosen, List<int[]> rejected) {}

  static List<Pairs> microBatches(long seed, int count, int size) {
    SplittableRandom r = new SplittableRandom(seed);
    List<Pairs> out = new ArrayList<>();
    for (int m = 0; m < count; m++) {
      List<int[]> prompts = new ArrayList<>();
      List<int[]> chosen = new ArrayList<>();
      List<int[]> rejected = new ArrayList<>();
      for (int i = 0; i < size; i++) {
        prompts.add(r.ints(1 + r.nextInt(6), 2, 96).toArray());
        chosen.add(r.ints(1 + r.nextInt(7), 2, 96).toArray());
        rejected.add(r.ints(1 + r.nextInt(7), 2, 96).toArray());
      }
      out.add(new Pairs(prompts, chosen, rejected));
    }
    return out;
  }

  /** One step's accumulated gradients through response log-probs (a nonlinear function of sums and means). */
  static float[][] logProbGradients(CausalLM model, List<Pairs> batches, boolean checkpointed) {
    return logProbGradients(model, batches, checkpointed, false);
  }

  /** With {@code churn}, the JVM collects and reuses direct memory between the forward pass and the backward. */
  static float[][] logProbGradients(CausalLM model, List<Pairs> batches, boolean checkpointed, boolean churn) {
    backwardThroughLogProbs(model, batches, checkpointed, churn);
    return takeGradients(model);
  }

  /** Accumulates into the trained parameters' gradients the backward of a fixed function of response log-probs. */
  static void backwardThroughLogProbs(CausalLM model, List<Pairs> batches, boolean checkpointed, boolean churn) {
    SequenceLogProbs logProbs = new SequenceLogProbs(model);
    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      for (Pairs b : batches) {
        try (NDManager scope = NDManager.newBaseManager();
            ActivationCheckpoints checkpoints = checkpointed ? model.gradientCheckpointing(scope) : null) {
          SequenceLogProbs.Pairs p = logProbs.computePairs(scope, b.prompts(), b.chosen(), b.rejected(), true);
          NDArray loss = p.chosen().sum().mul(p.chosen().mean()).sub(p.rejected().sum().square()).sum();
          if (churn) {
            DirectMemoryChurn.run();
          }
          collector.backward(loss);
          if (checkpoints != null) {
            assertEquals(1, checkpoints.pendingPasses(), "chosen and rejected run as one pass");
            checkpoints.backward();
            assertEquals(0, checkpoints.pendingPasses());
          }
        }
      }
    }
  }

  /** One step's accumulated gradients through full logits [B, T, V] (SFT's path), weighted by fixed random values. */
  static float[][] logitGradients(CausalLM model, boolean checkpointed) {
    SplittableRandom r = new SplittableRandom(5);
    try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
      for (int micro = 0; micro < 2; micro++) {
        int batch = 3;
        int time = 7 + micro;
        try (NDManager scope = NDManager.newBaseManager();
            ActivationCheckpoints checkpoints = checkpointed ? model.gradientCheckpointing(scope) : null) {
          NDArray ids = scope.create(r.ints(batch * time, 0, 96).toArray(), new Shape(batch, time));
          float[] w = new float[batch * time * 96];
          for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
          }
          NDArray weights = CausalLM.owned(scope.create(w, new Shape(batch, time, 96)));
          NDArray logits = model.logits(ids, true);
          collector.backward(logits.logSoftmax(-1).mul(weights).sum());
          if (checkpoints != null) {
            checkpoints.backward();
          }
        }
      }
    }
    return takeGradients(model);
  }

  /** Every parameter's gradient in model order, then zeroed. */
  static float[][] takeGradients(CausalLM model) {
    return takeGradients(new ArrayList<>(model.parameters().values()));
  }

  /** Each parameter's gradient, then zeroed. */
  static float[][] takeGradients(List<Parameter> params) {
    float[][] out = new float[params.size()][];
    try (NoGrad ignored = NoGrad.enter()) {
      for (int i = 0; i < out.length; i++) {
        try (NDArray g = params.get(i).getArray().getGradient()) {
          out[i] = g.toFloatArray();
          g.subi(g);
        }
      }
    }
    return out;
  }

  static void assertSame(CausalLM model, float[][] plain, float[][] checkpointed, String what) {
    List<String> names = new ArrayList<>(model.parameters().keySet());
    for (int p = 0; p < plain.length; p++) {
      double scale = 0;
      double diff = 0;
      for (int i = 0; i < plain[p].length; i++) {
        scale = Math.max(scale, Math.abs(plain[p][i]));
        diff = Math.max(diff, Math.abs(plain[p][i] - checkpointed[p][i]));
      }
      assertTrue(scale > 0, what + ": " + names.get(p) + " got no gradient");
      double relative = diff / Math.max(1, scale);
      worst = Math.max(worst, relative);
      assertTrue(relative <= 1e-5, what + ": " + names.get(p) + " differs by " + diff + " (largest gradient " + scale
          + ")");
    }
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void checkpointedGradientsEqualThePlainStepThroughResponseLogProbs(boolean fused) {
    for (ModelConfig config : List.of(LLAMA, WINDOWED)) {
      try (CausalLM model = CausalLM.create(config, Device.cpu(), 3)) {
        model.useFusedOps(fused);
        List<Pairs> batches = microBatches(17, 2, 3);
        float[][] plain = logProbGradients(model, batches, false);
        float[][] checkpointed = logProbGradients(model, batches, true);
        assertSame(model, plain, checkpointed, config.architecture() + (fused ? " fused" : " explicit"));
      }
    }
    System.out.println("largest relative gradient difference so far: " + worst);
  }

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void checkpointedGradientsEqualThePlainStepThroughFullLogits(boolean fused) {
    for (ModelConfig config : List.of(LLAMA, WINDOWED)) {
      try (CausalLM model = CausalLM.create(config, Device.cpu(), 4)) {
        model.useFusedOps(fused);
        float[][] plain = logitGradients(model, false);
        float[][] checkpointed = logitGradients(model, true);
        assertSame(model, plain, checkpointed, config.architecture() + (fused ? " fused" : " explicit"));
      }
    }
    System.out.println("largest relative gradient difference so far: " + worst);
  }

  @Test
  void theRecomputationReadsNoFreedJavaBufferWhenTheJvmCollectsBetweenForwardAndBackward() {
    try (CausalLM model = CausalLM.create(WINDOWED, Device.cpu(), 9)) {
      List<Pairs> batches = microBatches(29, 2, 3);
      float[][] quiet = logProbGradients(model, batches, true, false);
      float[][] churned = logProbGradients(model, batches, true, true);
      for (int p = 0; p < quiet.length; p++) {
        assertArrayEquals(quiet[p], churned[p], 0f, "parameter " + p);
      }
    }
  }

  @Test
  void theCheckpointedForwardGivesThePlainForwardsValuesAndPassesWithoutTrainingAreUntouched() {
    try (CausalLM model = CausalLM.create(WINDOWED, Device.cpu(), 6); NDManager m = NDManager.newBaseManager()) {
      NDArray ids = m.create(new int[] {5, 9, 2, 6, 5, 3, 5, 8, 9, 7}, new Shape(2, 5));
      float[] plain;
      float[] inference;
      try (GradientCollector ignored = Engine.getInstance().newGradientCollector()) {
        plain = model.logits(ids, true).toFloatArray();
      }
      inference = model.logits(ids, false).toFloatArray();
      try (GradientCollector ignored = Engine.getInstance().newGradientCollector();
          ActivationCheckpoints checkpoints = model.gradientCheckpointing(m)) {
        float[] checkpointed = model.logits(ids, true).toFloatArray();
        assertEquals(1, checkpoints.pendingPasses());
        assertArrayEquals(inference, model.logits(ids, false).toFloatArray(), 0f, "no-grad passes run as always");
        assertEquals(1, checkpoints.pendingPasses(), "no-grad passes keep nothing");
        for (int i = 0; i < plain.length; i++) {
          assertEquals(plain[i], checkpointed[i], 1e-5 * Math.max(1, Math.abs(plain[i])), "logit " + i);
        }
      }
    }
  }

  @Test
  void replayingBeforeTheLossIsBackPropagatedFailsAndAThreadHoldsOneSetOfCheckpointsPerModel() {
    try (CausalLM model = CausalLM.create(LLAMA, Device.cpu(), 7); NDManager m = NDManager.newBaseManager()) {
      NDArray ids = m.create(new int[] {5, 9, 2, 6, 5, 3}, new Shape(2, 3));
      try (GradientCollector ignored = Engine.getInstance().newGradientCollector();
          ActivationCheckpoints checkpoints = model.gradientCheckpointing(m)) {
        model.hiddenStates(ids, true);
        IllegalStateException early = assertThrows(IllegalStateException.class, checkpoints::backward);
        assertTrue(early.getMessage().contains("call backward() after back-propagating a loss computed from them"),
            early.getMessage());
        IllegalStateException twice = assertThrows(IllegalStateException.class, () -> model.gradientCheckpointing(m));
        assertTrue(twice.getMessage().contains("already on for this model on this thread"), twice.getMessage());
      }
      try (ActivationCheckpoints again = model.gradientCheckpointing(m)) {
        assertEquals(0, again.pendingPasses(), "closing released the thread's checkpoints");
      }
    }
  }

  @Test
  void idsOfTheWrongRankOrBeyondMaxPositionsAreRefusedWithAndWithoutCheckpointing() {
    try (CausalLM model = CausalLM.create(LLAMA, Device.cpu(), 3); NDManager scope = NDManager.newBaseManager()) {
      for (boolean checkpointed : new boolean[] {false, true}) {
        try (ActivationCheckpoints checkpoints = checkpointed ? model.gradientCheckpointing(scope) : null) {
          IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
              () -> model.hiddenStates(scope.create(new int[] {1, 2, 3}), true));
          assertEquals("input ids must be [batch, time], got (3)", rank.getMessage());
          IllegalArgumentException length = assertThrows(IllegalArgumentException.class,
              () -> model.hiddenStates(scope.zeros(new Shape(1, 2049), ai.djl.ndarray.types.DataType.INT32), true));
          assertEquals("sequence of 2049 tokens exceeds max_position_embeddings=2048", length.getMessage());
        }
      }
    }
  }

  @Test
  void checkpointedStepsLeaveTheLiveArrayCountFlatAndNothingOnTheModel() {
    List<Pairs> batches = microBatches(23, 1, 2);
    try (CausalLM model = CausalLM.create(WINDOWED, Device.cpu(), 8)) {
      int modelArrays = model.manager().getManagedArrays().size();
      Runnable step = () -> logProbGradients(model, batches, true);
      for (int i = 0; i < 5; i++) {
        step.run();
      }
      int baseline = MemoryDisciplineTest.liveArrays();
      for (int i = 0; i < 200; i++) {
        step.run();
      }
      // A pass opened and never replayed (an exception between forward and backward) is freed by close().
      try (NDManager scope = NDManager.newBaseManager();
          GradientCollector ignored = Engine.getInstance().newGradientCollector();
          ActivationCheckpoints checkpoints = model.gradientCheckpointing(scope)) {
        new SequenceLogProbs(model).compute(scope, batches.get(0).prompts(), batches.get(0).chosen(), true);
        assertEquals(1, checkpoints.pendingPasses());
      }
      takeGradients(model);
      assertEquals(baseline, MemoryDisciplineTest.liveArrays(), "live arrays after 200 checkpointed steps");
      assertEquals(modelArrays, model.manager().getManagedArrays().size(), "nothing attached to the model");
    }
  }
}
