package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.eval.RewardFunction;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.Generator;
import io.sparkdpo.model.NoGrad;
import io.sparkdpo.train.TrainingFixtures;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PPO's two rewards: a reward model on the policy's ids, and the ground truth on the decoded text. */
class PpoRewardsTest {
  @TempDir
  Path tmp;

  private static Generator.Generation stopped(int... tokens) {
    return new Generator.Generation(tokens, true, 0, new double[tokens.length + 1]);
  }

  @Test
  void theRewardModelScoresPromptAndResponseWithoutTheStopTokenWhateverTheBatch() {
    String model = TrainingFixtures.writeModel(tmp.resolve("model"), TrainingFixtures.SMALL, 5);
    try (CausalLM rm = CausalLM.loadScorer(model, Storage.local(), CausalLM.device("cpu"), 3)) {
      List<int[]> prompts = List.of(new int[] {5, 6, 7}, new int[] {9, 10}, new int[] {11});
      List<Generator.Generation> gens = List.of(stopped(20, 21), new Generator.Generation(new int[] {30, 31, 32, 33},
          false, -1, new double[4]), stopped());
      double[] batched = PpoRewards.rewardModel(rm).score(prompts, gens);
      for (int i = 0; i < 3; i++) {
        double alone = PpoRewards.rewardModel(rm).score(List.of(prompts.get(i)), List.of(gens.get(i)))[0];
        assertEquals(alone, batched[i], 1e-5, "row " + i + ": padding does not change the score");
        int[] p = prompts.get(i);
        int[] r = gens.get(i).tokens();
        int[] ids = new int[p.length + r.length];
        System.arraycopy(p, 0, ids, 0, p.length);
        System.arraycopy(r, 0, ids, p.length, r.length);
        try (NoGrad ignored = NoGrad.enter(); NDManager m = NDManager.newBaseManager()) {
          float direct = rm.scores(m.create(ids, new Shape(1, ids.length)), false).toFloatArray()[0];
          assertEquals(direct, batched[i], 1e-5, "row " + i + ": the score of prompt + response, no stop token");
        }
      }
      assertNotEquals(batched[0], batched[1]);
    }
  }

  @Test
  void theOracleScoresTheDecodedResponseAfterThePromptText() {
    TextTokenizer tokenizer = TextTokenizer.load("builtin", Storage.local());
    RewardFunction afinn = RewardFunctions.load("afinn", Storage.local());
    int[] a = tokenizer.encode("The day was");
    int[] b = tokenizer.encode("It was");
    Map<int[], String> texts = new IdentityHashMap<>();
    texts.put(a, "The day was");
    texts.put(b, "It was");
    int[] good = tokenizer.encode(" wonderful and happy");
    int[] bad = tokenizer.encode(" awful, a terrible loss");
    double[] s = PpoRewards.oracle(afinn, tokenizer, texts).score(List.of(a, b), List.of(stopped(good),
        new Generator.Generation(bad, false, -1, new double[bad.length])));
    assertEquals(afinn.score("The day was", tokenizer.decode(good)), s[0], 0.0);
    assertEquals(afinn.score("It was", tokenizer.decode(bad)), s[1], 0.0);
    assertTrue(s[0] > 0 && s[1] < 0, s[0] + ", " + s[1]);
  }
}
