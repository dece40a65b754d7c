package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import io.sparkdpo.io.Storage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What evaluation's sampled KL needs: log pi of sampled tokens, per-row seeds, teacher-forced token log-probs. */
class SampledTokenLogProbsTest {
  static CausalLM model;
  static final List<int[]> PROMPTS = List.of(new int[] {4, 9, 16, 25, 36}, new int[] {7}, new int[] {50, 51, 52});

  @TempDir
  Path dir;

  @BeforeAll
  static void loadModel() {
    model = CausalLM.load(GoldenReferenceTest.folder("llama_gqa_tied_f32"), Storage.local(), Device.cpu());
  }

  @AfterAll
  static void closeModel() {
    model.close();
  }

  @Test
  void sampledTokensLogProbsAreTheUnfilteredModelsTeacherForcedOnesStopTokenIncluded() {
    // Filtered sampling (temperature, top-k, top-p) still reports log pi of the model's own distribution.
    SamplingSettings settings = new SamplingSettings(0.8, 20, 0.95, 12, 11);
    int stop = new Generator(model, Set.of()).generate(PROMPTS, settings).get(0).tokens()[3]; // row 0 stops there
    List<Generator.Generation> out = new Generator(model, Set.of(stop)).generate(PROMPTS, settings);
    assertTrue(out.get(0).stopped());
    List<int[]> sampled = new ArrayList<>();
    for (Generator.Generation g : out) {
      sampled.add(g.sampledTokens());
      assertEquals(g.tokens().length + (g.stopped() ? 1 : 0), g.logProbs().length);
      assertEquals(g.stopped() ? stop : -1, g.stopToken());
    }
    double[][] forced;
    try (NDManager m = NDManager.newBaseManager()) {
      forced = new SequenceLogProbs(model).tokenLogProbs(m, PROMPTS, sampled);
    }
    for (int b = 0; b < PROMPTS.size(); b++) {
      assertEquals(out.get(b).logProbs().length, forced[b].length);
      for (int t = 0; t < forced[b].length; t++) {
        assertEquals(forced[b][t], out.get(b).logProbs()[t], 1e-4, "row " + b + " token " + t);
        assertTrue(forced[b][t] <= 0);
      }
    }
  }

  @Test
  void tokenLogProbsSumToTheSequenceLogProbAndPadNothingIn() {
    List<int[]> responses = List.of(new int[] {8, 9, 10, 11}, new int[] {12}, new int[] {13, 14});
    try (NDManager m = NDManager.newBaseManager()) {
      SequenceLogProbs lp = new SequenceLogProbs(model);
      double[][] tokens = lp.tokenLogProbs(m, PROMPTS, responses);
      double[] sums = lp.compute(m, PROMPTS, responses, false).sums();
      for (int i = 0; i < sums.length; i++) {
        assertEquals(responses.get(i).length, tokens[i].length);
        assertEquals(sums[i], java.util.Arrays.stream(tokens[i]).sum(), 1e-4);
        // Alone, without the batch's padding, the same values.
        assertArrayEquals(tokens[i], lp.tokenLogProbs(m, List.of(PROMPTS.get(i)), List.of(responses.get(i)))[0],
            1e-5);
      }
      assertThrows(IllegalArgumentException.class, () -> lp.tokenLogProbs(m, List.of(new int[0]),
          List.of(new int[] {1})));
    }
  }

  @Test
  void aRowsSeedAloneDecidesItsTokensWhateverShareItsBatch() {
    Generator generator = new Generator(model, Set.of());
    SamplingSettings s = new SamplingSettings(1.0, 0, 1.0, 10, 0);
    List<Generator.Generation> together = generator.generate(PROMPTS, s, new long[] {101, 202, 303});
    List<Generator.Generation> regrouped = generator.generate(List.of(PROMPTS.get(2), PROMPTS.get(0)), s,
        new long[] {303, 101});
    assertArrayEquals(together.get(0).tokens(), regrouped.get(1).tokens());
    assertArrayEquals(together.get(2).tokens(), regrouped.get(0).tokens());
    assertArrayEquals(together.get(1).tokens(), generator.generate(List.of(PROMPTS.get(1)), s, new long[] {202})
        .get(0).tokens());
    assertThrows(IllegalArgumentException.class, () -> generator.generate(PROMPTS, s, new long[] {1}));
  }

  @Test
  void fingerprintOfNamesWhatLoadWouldLoadWithoutLoadingIt() {
    try (CausalLM tiny = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu(), 5)) {
      assertEquals(tiny.fingerprint(), CausalLM.fingerprintOf(CausalLM.BUILTIN_TINY, Storage.local(), 5));
      assertTrue(!tiny.fingerprint().equals(CausalLM.fingerprintOf(CausalLM.BUILTIN_TINY, Storage.local(), 6)));
    }
    String folder = GoldenReferenceTest.folder("llama_gqa_tied_f32");
    assertEquals(model.fingerprint(), CausalLM.fingerprintOf(folder, Storage.local(), 0));
    assertThrows(IllegalArgumentException.class, () -> CausalLM.fingerprintOf("builtin:huge", Storage.local(), 0));
  }
}
