package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.TrainSettings.LossType;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** TRL's other loss types, weighted lists, rpo_alpha and bco_pair's running mean against dpo_loss_types.json. */
class DpoLossTypesTest {
  private static final double TOL = 2e-7;

  private static DpoLoss lossOf(JsonNode c) {
    List<LossType> types = new ArrayList<>();
    c.get("loss_type").forEach(t -> types.add(LossType.valueOf(t.asText().toUpperCase())));
    List<Double> weights = null;
    if (!c.get("loss_weights").isNull()) {
      weights = new ArrayList<>();
      for (JsonNode w : c.get("loss_weights")) {
        weights.add(w.asDouble());
      }
    }
    Double rpo = c.get("rpo_alpha").isNull() ? null : c.get("rpo_alpha").asDouble();
    return new DpoLoss(types, weights, c.get("beta").asDouble(), c.get("label_smoothing").asDouble(), rpo,
        c.get("discopop_tau").asDouble());
  }

  /** One training forward and backward of a golden step, checked against it. */
  private static void checkStep(String what, DpoLoss loss, JsonNode s) {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray pc = m.create(Golden.floats(s.get("policy_chosen")));
      NDArray pr = m.create(Golden.floats(s.get("policy_rejected")));
      NDArray rc = m.create(Golden.floats(s.get("reference_chosen")));
      NDArray rr = m.create(Golden.floats(s.get("reference_rejected")));
      pc.setRequiresGradient(true);
      pr.setRequiresGradient(true);
      NDArray sums = null;
      NDArray tokens = null;
      if (s.has("chosen_logp_sum")) {
        sums = m.create(Golden.floats(s.get("chosen_logp_sum")));
        sums.setRequiresGradient(true);
        tokens = m.create(Golden.floats(s.get("chosen_tokens")));
      }
      DpoOutput out;
      try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
        out = loss.compute(pc, pr, rc, rr, sums, tokens, true);
        gc.backward(out.loss());
      }
      Golden.assertClose(what + " loss", s.get("loss").asDouble(), out.lossValue(), TOL);
      Golden.assertClose(what + " losses", Golden.floats(s.get("losses")), out.losses().toFloatArray(), TOL);
      Golden.assertClose(what + " chosen rewards", Golden.floats(s.get("chosen_rewards")),
          out.chosenRewards().toFloatArray(), TOL);
      Golden.assertClose(what + " rejected rewards", Golden.floats(s.get("rejected_rewards")),
          out.rejectedRewards().toFloatArray(), TOL);
      Golden.assertClose(what + " d/d policy chosen", Golden.floats(s.get("grad_policy_chosen")),
          pc.getGradient().toFloatArray(), TOL);
      Golden.assertClose(what + " d/d policy rejected", Golden.floats(s.get("grad_policy_rejected")),
          pr.getGradient().toFloatArray(), TOL);
      if (sums != null) {
        Golden.assertClose(what + " d/d chosen sums", Golden.floats(s.get("grad_chosen_logp_sum")),
            sums.getGradient().toFloatArray(), TOL);
      }
      DpoStats stats = out.stats();
      Map<String, Double> metrics = stats.toMetrics("");
      s.get("metrics").fields().forEachRemaining(e -> {
        double actual = e.getKey().equals(MetricNames.NLL_LOSS) ? stats.nllLoss() : metrics.get(e.getKey());
        Golden.assertClose(what + " " + e.getKey(), e.getValue().asDouble(), actual, TOL);
      });
      if (s.has("running_mean")) {
        Golden.assertClose(what + " running mean", s.get("running_mean").asDouble(), loss.bcoRewards().mean(), TOL);
      }
    }
  }

  @Test
  void matchesTrlValuesGradientsAndRunningMeanForEveryCase() {
    JsonNode cases = Golden.load("dpo_loss_types.json").get("cases");
    assertEquals(23, cases.size());
    EnumSet<LossType> seen = EnumSet.noneOf(LossType.class);
    for (JsonNode c : cases) {
      DpoLoss loss = lossOf(c);
      seen.addAll(loss.types());
      int i = 0;
      for (JsonNode s : c.get("steps")) {
        checkStep(c.get("name").asText() + " step " + ++i, loss, s);
      }
    }
    assertEquals(EnumSet.allOf(LossType.class), seen, "every loss type has a golden case");
  }

  @Test
  void bcoRunningMeanRestoredFromItsStateContinuesExactlyAndEvaluationLeavesItAlone() {
    JsonNode c = null;
    for (JsonNode x : Golden.load("dpo_loss_types.json").get("cases")) {
      if (x.get("name").asText().startsWith("bco_pair over three")) {
        c = x;
      }
    }
    JsonNode steps = c.get("steps");
    DpoLoss first = lossOf(c);
    checkStep("run step 1", first, steps.get(0));
    checkStep("run step 2", first, steps.get(1));
    RunningMean.State saved = first.bcoRewards().state();
    assertEquals(2, saved.count());
    try (NDManager m = NDManager.newBaseManager()) {
      JsonNode s = steps.get(2);
      first.compute(m.create(Golden.floats(s.get("policy_chosen"))), m.create(Golden.floats(s.get("policy_rejected"))),
          m.create(Golden.floats(s.get("reference_chosen"))), m.create(Golden.floats(s.get("reference_rejected"))))
          .close();
    }
    assertEquals(saved, first.bcoRewards().state(), "evaluation does not move the running mean");
    DpoLoss resumed = lossOf(c);
    resumed.bcoRewards().restore(saved);
    checkStep("resumed step 3", resumed, steps.get(2));
    assertEquals(3, resumed.bcoRewards().count());
  }

  @Test
  void aNonFiniteBatchDoesNotPoisonBcoRunningMean() {
    DpoLoss loss = new DpoLoss(List.of(LossType.BCO_PAIR), null, 0.1, 0, null, 0.05);
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray a = m.create(new float[] {-3f, -4f});
      NDArray b = m.create(new float[] {-4f, -4f});
      loss.compute(a, b, b, b, null, null, true).close();
      RunningMean.State before = loss.bcoRewards().state();
      NDArray nan = m.create(new float[] {Float.NaN, -4f});
      try (DpoOutput out = loss.compute(a, b, nan, b, null, null, true)) {
        assertTrue(Float.isNaN(out.losses().toFloatArray()[0]), "the batch's own loss is NaN: the step is refused");
      }
      assertEquals(before, loss.bcoRewards().state());
      assertEquals(0.025, before.mean(), 1e-8, "the first batch's mean reward: beta (1 + 0 + 0 + 0) / 4");
    }
  }

  @Test
  void refusesMismatchedWeightsAndMissingNllInputs() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new DpoLoss(List.of(LossType.SIGMOID, LossType.IPO), List.of(1.0), 0.1, 0, null, 0.05));
    assertTrue(e.getMessage().contains("loss_weights has 1 values for 2 loss types"), e.getMessage());
    assertThrows(IllegalArgumentException.class,
        () -> new DpoLoss(List.of(LossType.DISCOPOP), null, 0.1, 0, null, 0));
    DpoLoss rpo = new DpoLoss(List.of(LossType.SIGMOID), null, 0.1, 0, 1.0, 0.05);
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray a = m.create(new float[] {-3f});
      e = assertThrows(IllegalArgumentException.class, () -> rpo.compute(a, a, a, a));
      assertTrue(e.getMessage().contains("rpo_alpha needs"), e.getMessage());
    }
    assertNull(new DpoLoss(LossType.SIGMOID, 0.1, 0).bcoRewards());
    assertTrue(new DpoLoss(List.of(LossType.SIGMOID, LossType.IPO), null, 0.1, 0, null, 0.05).usesMeanLogProbs());
    assertTrue(new DpoLoss(List.of(LossType.REFERENCE_FREE, LossType.APO_ZERO), null, 0.1, 0, null, 0.05)
        .needsReference());
  }

  @Test
  void closingTheOutputLeavesNoArrayBehind() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray pc = m.create(new float[] {-4f, -3f, -7f});
      NDArray pr = m.create(new float[] {-6f, -1f, -2f});
      NDArray rc = m.create(new float[] {-5f, -2f, -6f});
      NDArray rr = m.create(new float[] {-5f, -2f, -3f});
      NDArray sums = m.create(new float[] {-4f, -3f, -7f});
      NDArray tokens = m.create(new float[] {2f, 3f, 4f});
      int before = m.getManagedArrays().size();
      for (LossType t : LossType.values()) {
        DpoLoss loss = new DpoLoss(List.of(t, LossType.SIGMOID), List.of(0.5, 2.0), 0.2, 0, 1.0, 0.05);
        try (DpoOutput out = loss.compute(pc, pr, rc, rr, sums, tokens, true)) {
          out.stats();
        }
        assertEquals(before, m.getManagedArrays().size(), t + " left arrays behind");
      }
    }
  }
}
