package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The reward objective end to end against tools/golden/reward_golden.py: preference pairs with TRL margins, scored by
 * the golden Llama and Qwen2 classifiers (float64, transformers' pooling), each pair's loss
 * -log s(r_c - r_r - margin) + 0.01 (r_c + r_r)^2 and the gradient of the batch's summed loss on score.weight.
 */
class RewardObjectiveGoldenTest {
  private static final List<String> CASES = List.of("llama_pad1", "qwen2_pad_is_eos");

  private static String folder(String name) {
    return Path.of(System.getProperty("project.basedir", "."), "src/test/resources/io/sparkdpo/model/golden/reward",
        name).toString();
  }

  private static int[] ids(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  private static List<PreparedPair> pairs(JsonNode golden, boolean withMargins) {
    List<PreparedPair> out = new ArrayList<>();
    for (JsonNode p : golden.get("pairs")) {
      int[] prompt = ids(p.get("prompt"));
      int[] chosen = ids(p.get("chosen"));
      int[] rejected = ids(p.get("rejected"));
      out.add(new PreparedPair("p" + out.size(), "golden", out.size(), "", "", "", prompt, chosen, rejected,
          prompt.length, chosen.length, rejected.length, false, null, null,
          withMargins ? p.get("margin").asDouble() : null));
    }
    return out;
  }

  @Test
  void pairsWithTrlMarginsGiveTheGoldenLossesAndScoreHeadGradient() throws Exception {
    for (String name : CASES) {
      JsonNode g = Json.MAPPER.readTree(Path.of(folder(name), "golden.json").toFile());
      try (CausalLM model = CausalLM.load(folder(name), Storage.local(), CausalLM.device("cpu"))) {
        RewardObjective objective = new RewardObjective(model, new RewardLoss(
            g.get("center_rewards_coefficient").asDouble()));
        List<PreparedPair> batch = pairs(g, true);
        double expectedSum = 0;
        for (int i = 0; i < batch.size(); i++) {
          double expected = g.get("pair_losses").get(i).asDouble();
          expectedSum += expected;
          try (NDManager scope = NDManager.newBaseManager()) {
            assertEquals(expected, objective.evaluate(scope, List.of(batch.get(i)))[1], 1e-5, name + " pair " + i);
          }
        }
        // One right-padded batch of all pairs (the margins in a [B] array beside 2B rows), back-propagated.
        NDArray head = model.parameters().get("score.weight").getArray();
        float[] grad;
        try (NDManager scope = NDManager.newBaseManager();
            GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          Objective.Forward f = objective.forward(scope, batch);
          assertEquals(expectedSum, f.lossValue(), 1e-5, name + " batch loss");
          gc.backward(f.lossSum());
        }
        try (NDArray gradient = head.getGradient()) {
          grad = gradient.toFloatArray();
        }
        JsonNode expected = g.get("grad_score_weight");
        assertEquals(expected.size(), grad.length);
        for (int i = 0; i < grad.length; i++) {
          assertEquals(expected.get(i).asDouble(), grad[i], 1e-5 * (1 + Math.abs(expected.get(i).asDouble())),
              name + " d loss / d score.weight[" + i + "]");
        }
        // The margins matter: the same pairs without them are another loss.
        try (NDManager scope = NDManager.newBaseManager()) {
          double plain = objective.evaluate(scope, pairs(g, false))[1];
          assertTrue(Math.abs(plain - expectedSum) > 0.5, name + ": without margins " + plain + " vs " + expectedSum);
        }
      }
    }
  }
}
