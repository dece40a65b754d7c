package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.SequenceLogProbs;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class PairScoringTest {
  @Test
  void lengthBatchesCoverEveryPairOnceShortestFirstWithinTheTokenBudget() {
    int[] lengths = {50, 10, 300, 12, 40, 11, 900, 45};
    List<int[]> batches = LengthBatches.plan(lengths, 400);
    List<Integer> seen = new ArrayList<>();
    int previousLongest = 0;
    for (int[] batch : batches) {
      int longest = Arrays.stream(batch).map(i -> lengths[i]).max().orElseThrow();
      assertTrue(batch.length == 1 || 2 * batch.length * longest <= 400, Arrays.toString(batch));
      assertTrue(Arrays.stream(batch).map(i -> lengths[i]).min().orElseThrow() >= previousLongest);
      previousLongest = longest;
      Arrays.stream(batch).forEach(seen::add);
    }
    assertEquals(List.of(1, 5, 3, 4, 7, 0, 2, 6), seen);
    // 10, 11, 12 fit together (2 x 3 x 12 = 72), adding 40 would need 2 x 4 x 40 = 320 <= 400, 45: 2 x 5 x 45 = 450.
    assertArrayEquals(new int[] {1, 5, 3, 4}, batches.get(0));
    assertArrayEquals(new int[] {6}, batches.get(batches.size() - 1)); // longer than the budget: alone
  }

  @Test
  void scoresEqualOnePairAtATimeInInputOrderAndLeaveTheThreadsGradModeAsItWas() throws Exception {
    Random random = new Random(3);
    List<int[]> prompts = new ArrayList<>();
    List<int[]> chosen = new ArrayList<>();
    List<int[]> rejected = new ArrayList<>();
    for (int i = 0; i < 9; i++) {
      prompts.add(random.ints(1 + random.nextInt(20), 2, 4096).toArray());
      chosen.add(random.ints(1 + random.nextInt(30), 2, 4096).toArray());
      rejected.add(random.ints(1 + random.nextInt(30), 2, 4096).toArray());
    }
    try (CausalLM model = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu(), 17);
        NDManager m = NDManager.newBaseManager()) {
      // A fresh thread has gradient recording on, as a Spark task thread does.
      AtomicReference<PairScoring.Scores> result = new AtomicReference<>();
      AtomicReference<Boolean> gradModeAfter = new AtomicReference<>();
      Thread t = new Thread(() -> {
        result.set(PairScoring.score(model, prompts, chosen, rejected, 200));
        gradModeAfter.set(JniUtils.isGradMode());
      });
      t.start();
      t.join();
      assertTrue(gradModeAfter.get(), "the thread's own mode is restored");
      SequenceLogProbs lp = new SequenceLogProbs(model);
      for (int i = 0; i < prompts.size(); i++) {
        SequenceLogProbs.Pairs e = lp.computePairs(m, List.of(prompts.get(i)), List.of(chosen.get(i)),
            List.of(rejected.get(i)), false);
        assertEquals(e.chosen().sums()[0], result.get().chosen()[i], 1e-6 * Math.abs(e.chosen().sums()[0]));
        assertEquals(e.rejected().sums()[0], result.get().rejected()[i], 1e-6 * Math.abs(e.rejected().sums()[0]));
        assertEquals(chosen.get(i).length, result.get().chosenTokens()[i]);
        assertEquals(rejected.get(i).length, result.get().rejectedTokens()[i]);
      }
    }
  }
}
