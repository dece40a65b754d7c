package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.sparkdpo.io.Storage;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class GeneratorTest {
  static CausalLM model;
  static final List<int[]> PROMPTS = List.of(new int[] {4, 9, 16, 25, 36}, new int[] {7}, new int[] {50, 51, 52});

  @BeforeAll
  static void loadModel() {
    model = CausalLM.load(GoldenReferenceTest.folder("llama_gqa_tied_f32"), Storage.local(), Device.cpu());
  }

  @AfterAll
  static void closeModel() {
    model.close();
  }

  static List<int[]> tokens(List<Generator.Generation> out) {
    return out.stream().map(Generator.Generation::tokens).toList();
  }

  static void assertSameTokens(List<int[]> expected, List<int[]> actual) {
    assertEquals(expected.size(), actual.size());
    for (int i = 0; i < expected.size(); i++) {
      assertArrayEquals(expected.get(i), actual.get(i), "row " + i);
    }
  }

  @Test
  void sameSeedGivesTheSameTokensAndAnotherSeedOtherTokens() {
    Generator generator = new Generator(model, Set.of());
    SamplingSettings s = new SamplingSettings(1.0, 0, 1.0, 12, 42);
    List<int[]> a = tokens(generator.generate(PROMPTS, s));
    List<int[]> b = tokens(generator.generate(PROMPTS, s));
    List<int[]> c = tokens(generator.generate(PROMPTS, new SamplingSettings(1.0, 0, 1.0, 12, 43)));
    assertSameTokens(a, b);
    assertFalse(Arrays.equals(a.get(0), c.get(0)) && Arrays.equals(a.get(1), c.get(1)));
  }

  @Test
  void cachedDecodingEqualsFullRecomputeForGreedyAndSampling() {
    Generator generator = new Generator(model, Set.of());
    for (SamplingSettings s : List.of(SamplingSettings.greedy(10), new SamplingSettings(0.8, 20, 0.9, 10, 7),
        new SamplingSettings(1.5, 0, 1.0, 10, 8))) {
      assertSameTokens(tokens(generator.generate(PROMPTS, s, false)), tokens(generator.generate(PROMPTS, s, true)));
    }
  }

  @Test
  void leftPaddedBatchesGiveEachPromptItsOwnGreedyContinuation() {
    Generator generator = new Generator(model, Set.of());
    List<int[]> batched = tokens(generator.generate(PROMPTS, SamplingSettings.greedy(8)));
    for (int i = 0; i < PROMPTS.size(); i++) {
      assertArrayEquals(tokens(generator.generate(List.of(PROMPTS.get(i)), SamplingSettings.greedy(8))).get(0),
          batched.get(i), "prompt " + i);
    }
  }

  @Test
  void stopsAtAStopTokenAndOtherwiseAfterMaxNewTokens() {
    int[] free = tokens(new Generator(model, Set.of()).generate(List.of(PROMPTS.get(0)), SamplingSettings.greedy(6)))
        .get(0);
    assertEquals(6, free.length);
    int stop = free[2];
    int firstStop = 0;
    while (free[firstStop] != stop) {
      firstStop++;
    }
    Generator.Generation g = new Generator(model, Set.of(stop)).generate(List.of(PROMPTS.get(0)),
        SamplingSettings.greedy(6)).get(0);
    assertTrue(g.stopped());
    assertArrayEquals(Arrays.copyOf(free, firstStop), g.tokens());
    Generator.Generation capped = new Generator(model, Set.of()).generate(List.of(PROMPTS.get(0)),
        SamplingSettings.greedy(3)).get(0);
    assertFalse(capped.stopped());
    assertArrayEquals(Arrays.copyOf(free, 3), capped.tokens());
    // The config's EOS ids are the default stop tokens.
    assertEquals(List.of(0), model.config().eosTokenIds());
  }

  @Test
  void topKOfOneAndATinyTopPAreGreedy() {
    Generator generator = new Generator(model, Set.of());
    List<int[]> greedy = tokens(generator.generate(PROMPTS, SamplingSettings.greedy(8)));
    assertSameTokens(greedy, tokens(generator.generate(PROMPTS, new SamplingSettings(1.0, 1, 1.0, 8, 3))));
    assertSameTokens(greedy, tokens(generator.generate(PROMPTS, new SamplingSettings(1.0, 0, 1e-9, 8, 3))));
  }

  @Test
  void samplingFollowsTheTruncatedRenormalisedDistribution() {
    float[] logits = {0f, (float) Math.log(2), (float) Math.log(4), (float) Math.log(8)}; // p = 1/15, 2/15, 4/15, 8/15
    SplittableRandom random = new SplittableRandom(1);
    int n = 60_000;
    int[] all = new int[4];
    int[] topK2 = new int[4];
    int[] topP = new int[4];
    int[] hot = new int[4];
    for (int i = 0; i < n; i++) {
      all[Generator.pick(logits, 0, 4, new SamplingSettings(1, 0, 1, 1, 0), random)]++;
      topK2[Generator.pick(logits, 0, 4, new SamplingSettings(1, 2, 1, 1, 0), random)]++;
      // 8/15 = 0.533 < 0.6, so the nucleus holds the two most likely tokens.
      topP[Generator.pick(logits, 0, 4, new SamplingSettings(1, 0, 0.6, 1, 0), random)]++;
      hot[Generator.pick(logits, 0, 4, new SamplingSettings(1e6, 0, 1, 1, 0), random)]++;
    }
    assertEquals(1.0 / 15, all[0] / (double) n, 0.01);
    assertEquals(8.0 / 15, all[3] / (double) n, 0.01);
    assertEquals(0, topK2[0] + topK2[1]);
    assertEquals(2.0 / 3, topK2[3] / (double) n, 0.01);
    assertEquals(0, topP[0] + topP[1]);
    assertEquals(1.0 / 3, topP[2] / (double) n, 0.01);
    assertEquals(0.25, hot[0] / (double) n, 0.01, "a huge temperature flattens the distribution");
    assertEquals(3, Generator.pick(logits, 0, 4, SamplingSettings.greedy(1), random));
  }

  @Test
  void runsWithoutGradientsOnAnyThread() throws Exception {
    AtomicReference<Object> result = new AtomicReference<>();
    Thread thread = new Thread(() -> {
      try {
        result.set(tokens(new Generator(model).generate(PROMPTS, SamplingSettings.greedy(4))));
      } catch (Throwable t) {
        result.set(t);
      }
    });
    thread.start();
    thread.join();
    assertTrue(result.get() instanceof List, String.valueOf(result.get()));
  }

  @Test
  void rejectsBadSettingsAndPrompts() {
    assertThrows(IllegalArgumentException.class, () -> new SamplingSettings(-1, 0, 1, 1, 0));
    assertThrows(IllegalArgumentException.class, () -> new SamplingSettings(1, 0, 0, 1, 0));
    assertThrows(IllegalArgumentException.class, () -> new SamplingSettings(1, -1, 1, 1, 0));
    assertThrows(IllegalArgumentException.class, () -> new SamplingSettings(1, 0, 1, 0, 0));
    Generator generator = new Generator(model);
    assertEquals("prompt 1, position 0: token id 99 is outside the vocabulary of 64", assertThrows(
        IllegalArgumentException.class, () -> generator.generate(List.of(new int[] {1}, new int[] {99}),
            SamplingSettings.greedy(2))).getMessage());
    assertNotEquals(null, assertThrows(IllegalArgumentException.class,
        () -> generator.generate(List.of(new int[0]), SamplingSettings.greedy(2))));
  }
}
