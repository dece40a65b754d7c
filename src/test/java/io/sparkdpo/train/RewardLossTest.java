package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** The Bradley-Terry loss against TRL's compute_loss (tools/golden/reward_golden.py, golden/train/reward_loss.json). */
class RewardLossTest {

  @Test
  void perPairLossesMeanAndGradientsMatchTrlsRewardTrainerWithAndWithoutMarginAndCentering() {
    JsonNode golden = Golden.load("reward_loss.json");
    assertEquals(5, golden.get("cases").size());
    for (JsonNode c : golden.get("cases")) {
      String name = c.get("name").asText();
      Double coefficient = c.get("center_rewards_coefficient").isNull() ? null
          : c.get("center_rewards_coefficient").asDouble();
      RewardLoss loss = new RewardLoss(coefficient);
      try (NDManager m = NDManager.newBaseManager();
           GradientCollector collector = Engine.getInstance().newGradientCollector()) {
        NDArray chosen = m.create(Golden.floats(c.get("chosen")));
        NDArray rejected = m.create(Golden.floats(c.get("rejected")));
        chosen.setRequiresGradient(true);
        rejected.setRequiresGradient(true);
        NDArray margins = c.get("margin").isNull() ? null : m.create(Golden.floats(c.get("margin")));
        NDArray losses = loss.losses(chosen, rejected, margins);
        Golden.assertClose(name + " losses", Golden.floats(c.get("losses")), losses.toFloatArray(), 1e-6);
        NDArray mean = losses.mean();
        Golden.assertClose(name + " loss", c.get("loss").asDouble(), mean.getFloat(), 1e-6);
        collector.backward(mean);
        Golden.assertClose(name + " d loss / d r_chosen", Golden.floats(c.get("grad_chosen")),
            chosen.getGradient().toFloatArray(), 1e-5);
        Golden.assertClose(name + " d loss / d r_rejected", Golden.floats(c.get("grad_rejected")),
            rejected.getGradient().toFloatArray(), 1e-5);
      }
    }
  }

  @Test
  void equalRewardsCostLogTwoAndLargeGapsStayFinite() {
    RewardLoss loss = new RewardLoss(null);
    try (NDManager m = NDManager.newBaseManager()) {
      float[] out = loss.losses(m.create(new float[] {0.5f, 200f, -200f}), m.create(new float[] {0.5f, -200f, 200f}),
          null).toFloatArray();
      assertEquals(Math.log(2), out[0], 1e-7);
      assertEquals(0.0, out[1], 1e-30);
      assertEquals(400.0, out[2], 1e-4);
    }
  }

  @Test
  void aNegativeCenteringCoefficientIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new RewardLoss(-0.01));
  }
}
