package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.List;

/**
 * Per-token view of sampled responses, what PPO needs: for response token j of sequence i, log pi(token | prefix)
 * under the temperature the tokens were sampled at ({@code log_softmax(logits / T)[token]}, as TRL scores rollouts),
 * the value head's V at the same position (the state before the token) and the entropy of that distribution.
 * Sequences are {@code prompt + response} right-padded into one forward pass; only the R positions that predict a
 * response token reach the LM head and the value head, so the largest array is [R, V].
 *
 * <p>Results are flat [R] arrays in sequence order ({@link Result#lengths()} splits them). With {@code training}
 * the log-probs and values carry the autograd graph; the entropy never does (a metric).
 */
public final class ResponseTokens {
  private final CausalLM model;

  public ResponseTokens(CausalLM model) {
    this.model = model;
  }

  /**
   * @param logProbs float32 [R]
   * @param values float32 [R], or null without a value head
   * @param entropy float32 [R], without graph
   * @param lengths response lengths, summing to R
   */
  public record Result(NDArray logProbs, NDArray values, NDArray entropy, int[] lengths) {
    /** {@code flat} [R] as one row per sequence, in double precision. */
    public double[][] rows(NDArray flat) {
      float[] f = flat.toFloatArray();
      double[][] out = new double[lengths.length][];
      int from = 0;
      for (int i = 0; i < lengths.length; i++) {
        out[i] = new double[lengths[i]];
        for (int j = 0; j < lengths[i]; j++) {
          out[i][j] = f[from + j];
        }
        from += lengths[i];
      }
      return out;
    }
  }

  /**
   * @param prompts non-empty token ids (the first response token needs a position predicting it)
   * @param responses non-empty token ids
   * @param temperature the sampling temperature, > 0: logits are divided by it before the log-softmax
   * @param valueHead the value head to run on the same rows, or null
   * @param training record the log-probs and values for backward; otherwise nothing is recorded on this thread
   */
  public Result compute(NDManager manager, List<int[]> prompts, List<int[]> responses, double temperature,
      ValueHead valueHead, boolean training) {
    if (training) {
      return run(manager, prompts, responses, temperature, valueHead, true);
    }
    try (NoGrad ignored = NoGrad.enter()) {
      return run(manager, prompts, responses, temperature, valueHead, false);
    }
  }

  private Result run(NDManager manager, List<int[]> prompts, List<int[]> responses, double temperature,
      ValueHead valueHead, boolean training) {
    if (prompts.size() != responses.size() || prompts.isEmpty()) {
      throw new IllegalArgumentException(prompts.size() + " prompts and " + responses.size() + " responses: need "
          + "the same number, at least one");
    }
    if (!(temperature > 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be a finite number > 0, got " + temperature);
    }
    int vocab = model.config().vocabSize();
    int n = prompts.size();
    int length = 0;
    int rows = 0;
    int[] lengths = new int[n];
    for (int i = 0; i < n; i++) {
      if (prompts.get(i).length == 0 || responses.get(i).length == 0) {
        throw new IllegalArgumentException("sequence " + i + " has an empty " + (prompts.get(i).length == 0
            ? "prompt" : "response"));
      }
      lengths[i] = responses.get(i).length;
      rows += lengths[i];
      length = Math.max(length, prompts.get(i).length + lengths[i]);
    }
    int pad = model.config().padTokenId() >= 0 ? model.config().padTokenId() : 0;
    int[] ids = PackedIds.pack(prompts, responses, length, vocab, pad);
    long[] positions = new long[rows];
    long[] targets = new long[rows];
    int k = 0;
    for (int i = 0; i < n; i++) {
      int[] p = prompts.get(i);
      int[] r = responses.get(i);
      // Response token j sits at p.length + j and is predicted at position p.length + j - 1.
      for (int j = 0; j < r.length; j++, k++) {
        positions[k] = (long) i * length + p.length + j - 1;
        targets[k] = r[j];
      }
    }
    try (NDManager scope = manager.newSubManager()) {
      NDArray hidden = model.hiddenStates(scope.create(ids, new Shape(n, length)), training);
      // Gather indices and targets are kept by backward beyond this scope: libtorch-owned.
      NDArray index = CausalLM.owned(scope.create(positions));
      NDArray selected = hidden.reshape(-1, hidden.getShape().get(2)).get(scope, new NDIndex("{}", index));
      NDArray target = CausalLM.owned(scope.create(targets, new Shape(rows, 1)));
      NDArray logits = model.head(selected, training);
      NDArray scaled = temperature == 1.0 ? logits : ScalarOps.div(logits, temperature);
      NDArray logProbs = FusedOps.targetLogProbs(scaled, target, model.fusedOps());
      NDArray entropy;
      try (NoGrad ignored = NoGrad.enter(); NDArray logp = scaled.logSoftmax(1); NDArray p = logp.exp();
          NDArray plogp = p.mul(logp)) {
        entropy = plogp.sum(new int[] {1}).neg();
      }
      NDArray values = valueHead == null ? null : valueHead.values(selected);
      logProbs.attach(manager);
      entropy.attach(manager);
      if (values != null) {
        values.attach(manager);
      }
      return new Result(logProbs, values, entropy, lengths);
    }
  }
}
