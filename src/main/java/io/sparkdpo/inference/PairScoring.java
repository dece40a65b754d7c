package io.sparkdpo.inference;

import ai.djl.ndarray.NDManager;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.NoGrad;
import io.sparkdpo.model.SequenceLogProbs;
import java.util.ArrayList;
import java.util.List;

/**
 * A model's log-probabilities of preference pairs' responses, summed over response tokens: pairs batched by length
 * ({@link LengthBatches}), chosen and rejected of a batch in ONE forward pass ({@link SequenceLogProbs#computePairs}),
 * no autograd graph (gradient mode is switched off on the calling thread, a Spark task's included), and results in
 * the pairs' input order. No Spark here: the executor-side function and tests call it alike.
 */
public final class PairScoring {
  private PairScoring() {}

  /** Per pair, in input order: summed log-probs and the response tokens they cover. */
  public record Scores(double[] chosen, double[] rejected, int[] chosenTokens, int[] rejectedTokens) {}

  /**
   * @param batchTokens budget of padded tokens per forward pass (2 x pairs x longest sequence)
   */
  public static Scores score(CausalLM model, List<int[]> prompts, List<int[]> chosen, List<int[]> rejected,
      int batchTokens) {
    int n = prompts.size();
    int[] lengths = new int[n];
    for (int i = 0; i < n; i++) {
      lengths[i] = prompts.get(i).length + Math.max(chosen.get(i).length, rejected.get(i).length);
    }
    Scores out = new Scores(new double[n], new double[n], new int[n], new int[n]);
    SequenceLogProbs logProbs = new SequenceLogProbs(model);
    try (NoGrad ignored = NoGrad.enter()) {
      for (int[] batch : LengthBatches.plan(lengths, batchTokens)) {
        List<int[]> p = new ArrayList<>(batch.length);
        List<int[]> c = new ArrayList<>(batch.length);
        List<int[]> r = new ArrayList<>(batch.length);
        for (int i : batch) {
          p.add(prompts.get(i));
          c.add(chosen.get(i));
          r.add(rejected.get(i));
        }
        try (NDManager manager = NDManager.newBaseManager(model.device(), "PyTorch")) {
          SequenceLogProbs.Pairs pairs = logProbs.computePairs(manager, p, c, r, false);
          double[] cs = pairs.chosen().sums();
          double[] rs = pairs.rejected().sums();
          int[] cn = pairs.chosen().counts();
          int[] rn = pairs.rejected().counts();
          for (int k = 0; k < batch.length; k++) {
            out.chosen()[batch[k]] = cs[k];
            out.rejected()[batch[k]] = rs[k];
            out.chosenTokens()[batch[k]] = cn[k];
            out.rejectedTokens()[batch[k]] = rn[k];
          }
        }
      }
    }
    return out;
  }
}
