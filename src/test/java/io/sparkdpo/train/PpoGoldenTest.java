package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.model.ScalarOps;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** PPO's rewards, GAE, whitening and clipped losses against tools/golden/ppo_golden.py (ppo.json). */
class PpoGoldenTest {
  /** The host maths is float64 like the script; only summation order differs. */
  private static final double HOST_TOL = 1e-12;
  /** The loss runs in float32. */
  private static final double LOSS_TOL = 2e-6;

  private static List<JsonNode> cases() {
    List<JsonNode> out = new ArrayList<>();
    Golden.load("ppo.json").get("cases").forEach(out::add);
    return out;
  }

  private static PpoHyper hyper(JsonNode c) {
    return new PpoHyper(c.get("kl_coef").asDouble(),
        PpoHyper.KlEstimator.valueOf(c.get("kl_estimator").asText().toUpperCase()), c.get("gamma").asDouble(),
        c.get("lam").asDouble(), c.get("whiten_rewards").asBoolean(), c.get("cliprange").asDouble(),
        c.get("cliprange_value").asDouble(), c.get("vf_coef").asDouble(), 1.0);
  }

  private static int[] lengths(JsonNode c) {
    int[] out = new int[c.get("lengths").size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = c.get("lengths").get(i).asInt();
    }
    return out;
  }

  /** A flat golden array split into rows of the case's response lengths. */
  private static double[][] rows(JsonNode c, String key) {
    int[] lengths = lengths(c);
    double[][] out = new double[lengths.length][];
    int k = 0;
    for (int i = 0; i < lengths.length; i++) {
      out[i] = new double[lengths[i]];
      for (int t = 0; t < lengths[i]; t++) {
        out[i][t] = c.get(key).get(k++).asDouble();
      }
    }
    return out;
  }

  private static void assertRows(String what, JsonNode c, String key, double[][] actual, double tol) {
    double[][] expected = rows(c, key);
    assertEquals(expected.length, actual.length, what);
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i].length, actual[i].length, what + " row " + i);
      for (int t = 0; t < expected[i].length; t++) {
        Golden.assertClose(what + "[" + i + "][" + t + "]", expected[i][t], actual[i][t], tol);
      }
    }
  }

  private static PpoRollout rollout(JsonNode c) {
    int[] lengths = lengths(c);
    List<String> ids = new ArrayList<>();
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    for (int i = 0; i < lengths.length; i++) {
      ids.add("r" + i);
      prompts.add(new int[] {1});
      responses.add(new int[lengths[i]]);
    }
    double[] scores = new double[lengths.length];
    for (int i = 0; i < scores.length; i++) {
      scores[i] = c.get("scores").get(i).asDouble();
    }
    return PpoRollout.of(ids, prompts, responses, rows(c, "logprobs"), rows(c, "ref_logprobs"), rows(c, "values"),
        scores, hyper(c));
  }

  @Test
  void rewardsAdvantagesAndReturnsMatchTrlsSteps() {
    for (JsonNode c : cases()) {
      String name = c.get("name").asText();
      PpoRollout r = rollout(c);
      assertRows(name + " kl", c, "kl", r.kl(), HOST_TOL);
      assertRows(name + " rewards", c, "rewards", r.rewards(), HOST_TOL);
      Gae.Result gae = Gae.compute(r.rewards(), rows(c, "values"), c.get("gamma").asDouble(),
          c.get("lam").asDouble());
      assertRows(name + " raw advantages", c, "raw_advantages", gae.advantages(), HOST_TOL);
      double[][] adv = new double[r.samples().size()][];
      double[][] ret = new double[r.samples().size()][];
      for (int i = 0; i < adv.length; i++) {
        adv[i] = r.samples().get(i).advantages();
        ret[i] = r.samples().get(i).returns();
      }
      assertRows(name + " whitened advantages", c, "advantages", adv, HOST_TOL);
      assertRows(name + " returns", c, "returns", ret, HOST_TOL);
      Map<String, Double> m = r.metrics();
      Golden.assertClose(name + " objective/kl", c.get("objective_kl").asDouble(), m.get(PpoRollout.KL), HOST_TOL);
      Golden.assertClose(name + " non_score_reward", c.get("objective_non_score_reward").asDouble(),
          m.get(PpoRollout.NON_SCORE_REWARD), HOST_TOL);
      Golden.assertClose(name + " rlhf_reward", c.get("objective_rlhf_reward").asDouble(),
          m.get(PpoRollout.RLHF_REWARD), HOST_TOL);
      Golden.assertClose(name + " scores", c.get("objective_scores").asDouble(), m.get(PpoRollout.SCORES),
          HOST_TOL);
    }
  }

  @Test
  void clippedLossesStatisticsAndGradientsMatchTrl() {
    for (JsonNode c : cases()) {
      String name = c.get("name").asText();
      int tokens = c.get("advantages").size();
      PpoLoss loss = PpoLoss.of(hyper(c));
      try (NDManager m = NDManager.newBaseManager()) {
        NDArray logp = m.create(Golden.floats(c.get("new_logprobs")));
        NDArray vpred = m.create(Golden.floats(c.get("vpred")));
        logp.setRequiresGradient(true);
        vpred.setRequiresGradient(true);
        PpoLoss.Output out;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          out = loss.compute(logp, vpred, null, Golden.floats(c.get("logprobs")), Golden.floats(c.get("values")),
              Golden.floats(c.get("advantages")), Golden.floats(c.get("returns")));
          gc.backward(ScalarOps.div(out.lossSum(), tokens)); // the mean over the batch's tokens, as TRL
        }
        Map<String, Double> metrics = out.stats().toMetrics();
        assertEquals(tokens, out.stats().tokens());
        Golden.assertClose(name + " loss", c.get("loss").asDouble(), metrics.get(PpoLoss.Stats.LOSS), LOSS_TOL);
        Golden.assertClose(name + " pg_loss", c.get("pg_loss").asDouble(), metrics.get(PpoLoss.Stats.POLICY_LOSS),
            LOSS_TOL);
        Golden.assertClose(name + " vf_loss", c.get("vf_loss").asDouble(), metrics.get(PpoLoss.Stats.VALUE_LOSS),
            LOSS_TOL);
        assertEquals(c.get("pg_clipfrac").asDouble(), metrics.get(PpoLoss.Stats.POLICY_CLIPFRAC), 1e-12, name);
        assertEquals(c.get("vf_clipfrac").asDouble(), metrics.get(PpoLoss.Stats.VALUE_CLIPFRAC), 1e-12, name);
        Golden.assertClose(name + " approxkl", c.get("approxkl").asDouble(), metrics.get(PpoLoss.Stats.APPROX_KL),
            LOSS_TOL);
        Golden.assertClose(name + " ratio", c.get("ratio_mean").asDouble(), metrics.get(PpoLoss.Stats.RATIO),
            LOSS_TOL);
        // Clipped tokens get no policy gradient, clipped values none either: the golden gradients have those zeros.
        try (NDArray g = logp.getGradient(); NDArray gv = vpred.getGradient()) {
          Golden.assertClose(name + " d loss / d log pi", Golden.floats(c.get("grad_new_logprobs")),
              g.toFloatArray(), LOSS_TOL);
          Golden.assertClose(name + " d loss / d v", Golden.floats(c.get("grad_vpred")), gv.toFloatArray(),
              LOSS_TOL);
        }
      }
    }
  }

  @Test
  void gaeWithLambdaOneAndNoDiscountIsRewardToGoMinusValue() {
    double[][] rewards = {{0.5, -1.0, 2.0}};
    double[][] values = {{0.25, 0.5, -0.75}};
    Gae.Result r = Gae.compute(rewards, values, 1.0, 1.0);
    double[] expected = {1.5 - 0.25, 1.0 - 0.5, 2.0 + 0.75};
    for (int t = 0; t < 3; t++) {
      assertEquals(expected[t], r.advantages()[0][t], 1e-15);
      assertEquals(rewards[0][t] + (t < 2 ? (t == 0 ? -1.0 + 2.0 : 2.0) : 0), r.returns()[0][t], 1e-15);
    }
    // lambda 0: one-step TD errors
    Gae.Result td = Gae.compute(rewards, values, 0.5, 0.0);
    assertEquals(0.5 + 0.5 * 0.5 - 0.25, td.advantages()[0][0], 1e-15);
    assertEquals(2.0 - (-0.75), td.advantages()[0][2], 1e-15);
  }

  @Test
  void whiteningRefusesFewerThanTwoTokensAsTrlDoes() {
    assertThrows(IllegalArgumentException.class, () -> Whitening.whiten(new double[][] {{1.0}}, true));
    double[][] w = Whitening.whiten(new double[][] {{1.0, 3.0}, {5.0}}, true);
    // mean 3, unbiased variance 4: (x - 3) / 2
    assertEquals(-1.0, w[0][0], 1e-8);
    assertEquals(0.0, w[0][1], 1e-15);
    assertEquals(1.0, w[1][0], 1e-8);
  }
}
