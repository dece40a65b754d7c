package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The per-sequence logit sums behind TRL's {@code logits/chosen} metric against tools/golden/llama_golden.py's
 * float64 logits: the mean over the vocabulary at every position that predicts a response token, summed per
 * sequence, from the same pass as the log-probs (with and without graph, chunked or not), leaving the log-probs
 * and the manager's live arrays as they were.
 */
class MeanLogitsTest {

  /** Golden: sum over positions p-1 .. p+r-2 of the mean of the 64 logits there. */
  private static double goldenLogitSum(JsonNode sequence) {
    int p = sequence.get("prompt").size();
    int r = sequence.get("response").size();
    JsonNode logits = sequence.get("logits");
    double sum = 0;
    for (int t = p - 1; t <= p + r - 2; t++) {
      JsonNode row = logits.get(t);
      double rowSum = 0;
      for (JsonNode v : row) {
        rowSum += v.asDouble();
      }
      sum += rowSum / row.size();
    }
    return sum;
  }

  @ParameterizedTest
  @ValueSource(strings = {"llama_gqa_tied_f32", "llama_biases_untied_bf16", "llama3_rope_scaling_f32"})
  void logitSumsMatchTheIndependentReferenceAndLeaveTheLogProbsAlone(String name) throws Exception {
    JsonNode g = GoldenReferenceTest.golden(name);
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    for (JsonNode s : g.get("sequences")) {
      prompts.add(GoldenReferenceTest.ints(s.get("prompt")));
      responses.add(GoldenReferenceTest.ints(s.get("response")));
    }
    int before = SequenceLogProbs.HEAD_CHUNK_ROWS;
    try (CausalLM model = GoldenReferenceTest.loadFloat32(GoldenReferenceTest.folder(name));
        NDManager manager = NDManager.newBaseManager()) {
      SequenceLogProbs logProbs = new SequenceLogProbs(model);
      assertNull(logProbs.compute(manager, prompts, responses, false).logitSum(), "only on request");
      for (int chunk : new int[] {1024, 3}) {
        SequenceLogProbs.HEAD_CHUNK_ROWS = chunk; // 3 rows: the head runs in several chunks without graph
        for (boolean training : new boolean[] {false, true}) {
          int live = manager.getManagedArrays().size();
          try (NDManager scope = manager.newSubManager();
              GradientCollector ignored = training ? Engine.getEngine("PyTorch").newGradientCollector() : null) {
            float[] plain = logProbs.compute(scope, prompts, responses, training).sum().toFloatArray();
            SequenceLogProbs.Batch b = logProbs.compute(scope, prompts, responses, training, true);
            float[] sums = b.logitSum().toFloatArray();
            for (int i = 0; i < sums.length; i++) {
              double expected = goldenLogitSum(g.get("sequences").get(i));
              assertEquals(expected, sums[i], 1e-4 * Math.max(1, Math.abs(expected)),
                  name + " sequence " + i + " (chunk " + chunk + ", training " + training + ")");
            }
            assertArrayEquals(plain, b.sum().toFloatArray(), "log-probs unchanged by the request, bit for bit");
          }
          assertEquals(live, manager.getManagedArrays().size(), "no array left behind");
        }
      }
    } finally {
      SequenceLogProbs.HEAD_CHUNK_ROWS = before;
    }
  }
}
