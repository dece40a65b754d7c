package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import io.sparkdpo.testing.ProcStatus;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Peak resident memory (VmHWM) and time of a no-grad response log-prob pass on a model with a Llama-3 sized
 * vocabulary (128,256) and a small trunk (hidden 256, 2 layers, tied: 34.4M parameters), batch 8 x 512 tokens with
 * 256-token prompts, the way the reference stage runs. {@code -Dbench.path=full} runs the former computation
 * (full [N, L, V] logits, log-softmax over all of it, gather, mask; kept in {@link ResponseHeadTest#legacySums}),
 * {@code lean} (default) {@link SequenceLogProbs}. One path per JVM, so VmHWM is that path's peak.
 * Run: {@code mvn -B -o -Pbench test -Dtest=LogProbMemoryBench -Dbench.path=full|lean} ({@code -Dbench.chunk=N}
 * sets {@link SequenceLogProbs#HEAD_CHUNK_ROWS}, {@code -Dbench.rounds=N} the passes, default 3).
 */
@Tag("bench")
public class LogProbMemoryBench {
  private static final int VOCAB = 128_256;
  private static final int BATCH = 8;
  private static final int PROMPT = 256;
  private static final int RESPONSE = 256;
  private static final int ROUNDS = Integer.getInteger("bench.rounds", 3);

  @Test
  void reportsPeakMemoryAndTimeOfOneNoGradPass() {
    String path = System.getProperty("bench.path", "lean");
    SequenceLogProbs.HEAD_CHUNK_ROWS = Integer.getInteger("bench.chunk", SequenceLogProbs.HEAD_CHUNK_ROWS);
    SplittableRandom random = new SplittableRandom(11);
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    for (int i = 0; i < BATCH; i++) {
      prompts.add(random.ints(PROMPT, 0, VOCAB).toArray());
      responses.add(random.ints(RESPONSE, 0, VOCAB).toArray());
    }
    try (CausalLM model = CausalLM.create(ModelConfig.llama(VOCAB, 256, 704, 2, 4, 4, true), Device.cpu(), 1)) {
      long afterLoad = ProcStatus.self("VmHWM");
      double[] seconds = new double[ROUNDS];
      float[] sums = null;
      for (int r = 0; r < ROUNDS; r++) {
        long start = System.nanoTime();
        try (NDManager scope = NDManager.newBaseManager()) {
          sums = path.equals("full")
              ? ResponseHeadTest.legacySums(model, scope, prompts, responses, false).toFloatArray()
              : new SequenceLogProbs(model).compute(scope, prompts, responses, false).sum().toFloatArray();
        }
        seconds[r] = (System.nanoTime() - start) / 1e9;
      }
      long peak = ProcStatus.self("VmHWM");
      Arrays.sort(seconds);
      System.out.printf(Locale.ROOT, "path=%s chunk=%d params=%.1fM VmHWM after model %d MB, after %d passes %d MB "
          + "(pass adds %d MB); median pass %.2f s; sum[0]=%.4f%n", path, SequenceLogProbs.HEAD_CHUNK_ROWS, model.numParameters() / 1e6,
          afterLoad >> 10, ROUNDS, peak >> 10, (peak - afterLoad) >> 10, seconds[ROUNDS / 2], sums[0]);
      assertTrue(Float.isFinite(sums[0]) && sums[0] < 0);
    }
  }
}
