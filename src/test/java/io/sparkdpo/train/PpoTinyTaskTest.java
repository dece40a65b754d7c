package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import io.sparkdpo.config.LrSchedulerType;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.ValueHead;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * PPO end to end in one JVM on a tiny random Llama (vocabulary 64) against a frozen copy of itself as pi_SFT, with a
 * synthetic reward: the fraction of response tokens among 8 "good" ids, so pi_SFT scores about 1/8. (The built-in
 * 4096-token model was tried first: with random embeddings 512 good ids share no feature, and 16 x 8 samples per
 * update could not move them in a test's time.)
 */
class PpoTinyTaskTest {
  static final ModelConfig CONFIG = ModelConfig.llama(64, 64, 176, 2, 4, 2, true);
  private static final int UPDATES = 60;
  private static final int WINDOW = 10;

  /** Good tokens are ids 2..9 (0 is EOS, 1 padding). */
  static double goodFraction(int[] prompt, int[] response) {
    if (response.length == 0) {
      return 0;
    }
    int good = 0;
    for (int t : response) {
      good += t >= 2 && t < 10 ? 1 : 0;
    }
    return (double) good / response.length;
  }

  static List<int[]> prompts(int n, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] p = new int[4];
      for (int t = 0; t < p.length; t++) {
        p[t] = 2 + random.nextInt(62);
      }
      out.add(p);
    }
    return out;
  }

  /** Metrics of each update of a run: 32 prompts per rollout, 4 epochs of 2 mini-batches, 8-token responses. */
  static List<Map<String, Double>> run(double klCoef) {
    return run(klCoef, UPDATES);
  }

  static List<Map<String, Double>> run(double klCoef, int updates) {
    PpoTrainer.Settings s = new PpoTrainer.Settings(PpoHyper.trlDefaults().withTemperature(1.0).withKlCoef(klCoef),
        4, 2, 8, 8, 1e-3, LrSchedulerType.CONSTANT, new AdamW.Hyper(0.9, 0.999, 1e-8, 0.0), 1.0, 5);
    List<Map<String, Double>> history = new ArrayList<>();
    try (CausalLM policy = CausalLM.create(CONFIG, CausalLM.device("cpu"), 11);
        CausalLM reference = CausalLM.create(CONFIG, CausalLM.device("cpu"), 11);
        ValueHead head = ValueHead.create(policy, 3);
        PpoTrainer ppo = new PpoTrainer(policy, head, reference, PpoTinyTaskTest::goodFraction, s, updates)) {
      for (int u = 0; u < updates; u++) {
        history.add(ppo.update(prompts(32, 100 + u)).metrics());
      }
      assertEquals(updates * 4 * 2, ppo.optimizerSteps());
      assertThrows(IllegalArgumentException.class, () -> ppo.update(prompts(31, 1)), "31 prompts, 2 mini-batches");
    }
    return history;
  }

  private static double mean(List<Map<String, Double>> h, String key, int from, int to) {
    double sum = 0;
    for (int i = from; i < to; i++) {
      sum += h.get(i).get(key);
    }
    return sum / (to - from);
  }

  @Test
  void ppoRaisesTheRewardWhileTheKlPenaltyKeepsTheKlBounded() {
    double beta = 0.05;
    List<Map<String, Double>> penalised = run(beta);
    List<Map<String, Double>> free = run(0.0);
    double scoreBefore = mean(penalised, PpoRollout.SCORES, 0, WINDOW);
    double scoreAfter = mean(penalised, PpoRollout.SCORES, UPDATES - WINDOW, UPDATES);
    double objectiveBefore = mean(penalised, PpoRollout.RLHF_REWARD, 0, WINDOW);
    double objectiveAfter = mean(penalised, PpoRollout.RLHF_REWARD, UPDATES - WINDOW, UPDATES);
    double klAfter = mean(penalised, PpoRollout.KL, UPDATES - WINDOW, UPDATES);
    double freeKlAfter = mean(free, PpoRollout.KL, UPDATES - WINDOW, UPDATES);
    System.out.printf("kl_coef %.2f: score %.3f -> %.3f, score - kl_coef KL %.3f -> %.3f, KL %.2f nats; "
        + "without penalty: score %.3f, KL %.2f nats%n", beta, scoreBefore, scoreAfter, objectiveBefore,
        objectiveAfter, klAfter, mean(free, PpoRollout.SCORES, UPDATES - WINDOW, UPDATES), freeKlAfter);
    // pi_SFT's expected score is 1/8; PPO more than doubles it.
    assertTrue(scoreBefore < 0.2, "start " + scoreBefore);
    assertTrue(scoreAfter > scoreBefore + 0.2, scoreBefore + " -> " + scoreAfter);
    // The objective PPO maximises (score minus kl_coef times the summed per-token KL) rose as well.
    assertTrue(objectiveAfter > objectiveBefore + 0.1, objectiveBefore + " -> " + objectiveAfter);
    // Bounded: a policy whose objective beats pi_SFT's has KL <= (score - pi_SFT's score) / kl_coef <= (1 - 1/8) /
    // kl_coef; and the penalty is what bounds it: the same run without it drifts more than twice as far.
    assertTrue(klAfter <= (scoreAfter - scoreBefore) / beta, "KL " + klAfter);
    assertTrue(freeKlAfter > 2 * klAfter, "KL without penalty " + freeKlAfter + ", with " + klAfter);
  }

  @Test
  void theSameSeedsGiveTheSameUpdatesBitForBit() {
    List<Map<String, Double>> a = run(0.05, 3);
    List<Map<String, Double>> b = run(0.05, 3);
    assertEquals(a, b);
    assertTrue(a.get(2).get(PpoLoss.Stats.APPROX_KL) > 0, "the policy moved");
  }

  /** Arrays reachable from the engine's system manager (MemoryDisciplineTest's probe). */
  private static int liveArrays() {
    try (NDManager probe = NDManager.newBaseManager("PyTorch")) {
      return probe.getParentManager().getManagedArrays().size();
    }
  }

  @Test
  void updatesLeaveTheLiveArrayCountFlat() {
    PpoTrainer.Settings s = new PpoTrainer.Settings(PpoHyper.trlDefaults(), 2, 2, 4, 6, 1e-3,
        LrSchedulerType.LINEAR, new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01), 1.0, 8);
    try (CausalLM policy = CausalLM.create(CONFIG, CausalLM.device("cpu"), 11);
        CausalLM reference = CausalLM.create(CONFIG, CausalLM.device("cpu"), 11);
        ValueHead head = ValueHead.create(policy, 3);
        PpoTrainer ppo = new PpoTrainer(policy, head, reference, PpoTinyTaskTest::goodFraction, s, 8)) {
      ppo.update(prompts(8, 1));
      int baseline = liveArrays();
      for (int u = 2; u <= 6; u++) {
        ppo.update(prompts(8, u));
        assertEquals(baseline, liveArrays(), "live arrays after update " + u);
      }
    }
  }
}
