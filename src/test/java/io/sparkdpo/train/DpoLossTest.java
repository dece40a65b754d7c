package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.TrainSettings.LossType;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DpoLossTest {
  private static final double TOL = 2e-7;

  private static LossType type(String name) {
    return LossType.valueOf(name.toUpperCase());
  }

  @Test
  void matchesTrlValuesAndGradientsForEveryLossType() {
    JsonNode cases = Golden.load("dpo_loss.json").get("cases");
    assertEquals(10, cases.size());
    for (JsonNode c : cases) {
      String what = c.get("loss_type").asText() + " beta=" + c.get("beta") + " ls=" + c.get("label_smoothing");
      DpoLoss loss = new DpoLoss(type(c.get("loss_type").asText()), c.get("beta").asDouble(),
          c.get("label_smoothing").asDouble());
      try (NDManager m = NDManager.newBaseManager()) {
        NDArray pc = m.create(Golden.floats(c.get("policy_chosen")));
        NDArray pr = m.create(Golden.floats(c.get("policy_rejected")));
        NDArray rc = m.create(Golden.floats(c.get("reference_chosen")));
        NDArray rr = m.create(Golden.floats(c.get("reference_rejected")));
        pc.setRequiresGradient(true);
        pr.setRequiresGradient(true);
        DpoOutput out;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          out = loss.compute(pc, pr, rc, rr);
          gc.backward(out.loss());
        }
        Golden.assertClose(what + " loss", c.get("loss").asDouble(), out.lossValue(), TOL);
        Golden.assertClose(what + " losses", Golden.floats(c.get("losses")), out.losses().toFloatArray(), TOL);
        Golden.assertClose(what + " chosen rewards", Golden.floats(c.get("chosen_rewards")),
            out.chosenRewards().toFloatArray(), TOL);
        Golden.assertClose(what + " rejected rewards", Golden.floats(c.get("rejected_rewards")),
            out.rejectedRewards().toFloatArray(), TOL);
        Golden.assertClose(what + " d/d policy chosen", Golden.floats(c.get("grad_policy_chosen")),
            pc.getGradient().toFloatArray(), TOL);
        Golden.assertClose(what + " d/d policy rejected", Golden.floats(c.get("grad_policy_rejected")),
            pr.getGradient().toFloatArray(), TOL);
        Map<String, Double> metrics = out.stats().toMetrics("");
        c.get("metrics").fields().forEachRemaining(e ->
            Golden.assertClose(what + " " + e.getKey(), e.getValue().asDouble(), metrics.get(e.getKey()), TOL));
        assertEquals(c.get("loss").asDouble(), metrics.get("loss"), 1e-6);
        assertTrue(!out.chosenRewards().hasGradient(), "rewards are detached");
      }
    }
  }

  @Test
  void policyEqualToReferenceGivesLnTwoZeroRewardsAndHalfBetaGradients() {
    int batch = 4;
    for (double beta : new double[] {0.1, 0.5, 2.0}) {
      try (NDManager m = NDManager.newBaseManager()) {
        float[] chosen = {-12.5f, -40.25f, -3f, -77.125f};
        float[] rejected = {-9f, -41.5f, -18.75f, -60f};
        NDArray pc = m.create(chosen);
        NDArray pr = m.create(rejected);
        pc.setRequiresGradient(true);
        pr.setRequiresGradient(true);
        DpoOutput out;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          out = new DpoLoss(LossType.SIGMOID, beta, 0).compute(pc, pr, m.create(chosen), m.create(rejected));
          gc.backward(out.loss());
        }
        assertEquals(Math.log(2), out.lossValue(), 1e-6);
        Map<String, Double> metrics = out.stats().toMetrics("eval/");
        assertEquals(0.0, metrics.get("eval/rewards/chosen"));
        assertEquals(0.0, metrics.get("eval/rewards/rejected"));
        assertEquals(0.0, metrics.get("eval/rewards/margins"));
        assertEquals(0.0, metrics.get("eval/rewards/accuracies"), "ties are not counted as correct (TRL: >)");
        for (float g : pc.getGradient().toFloatArray()) {
          assertEquals(-(beta / 2) / batch, g, 1e-7);
        }
        for (float g : pr.getGradient().toFloatArray()) {
          assertEquals(+(beta / 2) / batch, g, 1e-7);
        }
      }
    }
  }

  @Test
  void robustWithoutSmoothingIsTheSigmoidLoss() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray pc = m.create(new float[] {-10f, -20f, -5f});
      NDArray pr = m.create(new float[] {-12f, -15f, -9f});
      NDArray rc = m.create(new float[] {-11f, -19f, -7f});
      NDArray rr = m.create(new float[] {-11f, -16f, -8f});
      float[] sigmoid = new DpoLoss(LossType.SIGMOID, 0.3, 0).compute(pc, pr, rc, rr).losses().toFloatArray();
      float[] robust = new DpoLoss(LossType.ROBUST, 0.3, 0).compute(pc, pr, rc, rr).losses().toFloatArray();
      Golden.assertClose("robust(0) vs sigmoid", sigmoid, robust, 0);
    }
  }

  @Test
  void staysFiniteForExtremeLogRatios() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray pc = m.create(new float[] {0f, -20000f});
      NDArray pr = m.create(new float[] {-20000f, 0f});
      NDArray zero = m.zeros(new ai.djl.ndarray.types.Shape(2));
      float[] losses = new DpoLoss(LossType.SIGMOID, 0.1, 0.1).compute(pc, pr, zero, zero).losses().toFloatArray();
      // beta*h = +2000 and -2000: -0.9 log s(2000) - 0.1 log s(-2000) = 200; and 0.9 * 2000 = 1800.
      assertEquals(200f, losses[0], 1e-3);
      assertEquals(1800f, losses[1], 1e-2);
    }
  }

  @Test
  void referenceFreeNeedsNoReferenceAndOthersDo() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray pc = m.create(new float[] {-4f});
      NDArray pr = m.create(new float[] {-6f});
      DpoOutput out = new DpoLoss(LossType.REFERENCE_FREE, 0.5, 0).compute(pc, pr, null, null);
      assertEquals(Math.log1p(Math.exp(-1.0)), out.lossValue(), 1e-6);
      assertEquals(-2.0f, out.chosenRewards().getFloat(0), 0f);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> new DpoLoss(LossType.HINGE, 0.1, 0).compute(pc, pr, null, null));
      assertTrue(e.getMessage().contains("hinge needs reference log-probs"), e.getMessage());
      assertTrue(new DpoLoss(LossType.IPO, 0.1, 0).usesMeanLogProbs());
      assertTrue(!new DpoLoss(LossType.SIGMOID, 0.1, 0).usesMeanLogProbs());
    }
  }

  @Test
  void rejectsOutOfRangeSettings() {
    assertThrows(IllegalArgumentException.class, () -> new DpoLoss(LossType.SIGMOID, 0, 0));
    assertThrows(IllegalArgumentException.class, () -> new DpoLoss(LossType.ROBUST, 0.1, 0.5));
  }

  @Test
  void closingTheOutputLeavesNoArrayBehind() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray pc = m.create(new float[] {-4f, -3f});
      NDArray pr = m.create(new float[] {-6f, -1f});
      NDArray rc = m.create(new float[] {-5f, -2f});
      NDArray rr = m.create(new float[] {-5f, -2f});
      int before = m.getManagedArrays().size();
      for (LossType t : LossType.values()) {
        try (DpoOutput out = new DpoLoss(t, 0.2, t == LossType.IPO || t == LossType.HINGE ? 0 : 0.1)
            .compute(pc, pr, rc, rr)) {
          out.stats();
        }
        assertEquals(before, m.getManagedArrays().size(), t + " left arrays behind");
      }
    }
  }
}
