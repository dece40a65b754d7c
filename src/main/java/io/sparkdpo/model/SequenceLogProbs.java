package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;

/**
 * log pi(response | prompt) for a batch of (prompt ids, response ids): per sequence the sum and the mean of
 * the response tokens' log-probabilities and their count, prompt tokens excluded. Sequences are
 * {@code prompt + response}, right-padded to the longest, and run as one forward pass; log-probabilities come
 * from libtorch's log-softmax over float32 logits. DPO, SFT, the reference stage and evaluation all use this.
 *
 * <p>With {@code training} the results are part of the autograd graph (call inside a GradientCollector and
 * backpropagate through {@link Batch#sum()} or {@link Batch#mean()}); without it nothing is recorded, on any
 * thread.
 */
public final class SequenceLogProbs {
  private final CausalLM model;

  public SequenceLogProbs(CausalLM model) {
    this.model = model;
  }

  /**
   * Per-sequence results, float32 [N] ({@code count} int32 [N]), attached to the caller's manager.
   * The helpers copy them to Java arrays.
   */
  public record Batch(NDArray sum, NDArray mean, NDArray count) {
    public double[] sums() {
      return toDoubles(sum);
    }

    public double[] means() {
      return toDoubles(mean);
    }

    public int[] counts() {
      return count.toIntArray();
    }

    private static double[] toDoubles(NDArray a) {
      float[] f = a.toFloatArray();
      double[] d = new double[f.length];
      for (int i = 0; i < f.length; i++) {
        d[i] = f[i];
      }
      return d;
    }
  }

  /** Chosen and rejected results of a preference batch. */
  public record Pairs(Batch chosen, Batch rejected) {}

  /** Response log-probabilities of {@code prompts.get(i) + responses.get(i)}, one forward pass for the batch. */
  public Batch compute(NDManager manager, List<int[]> prompts, List<int[]> responses, boolean training) {
    if (prompts.size() != responses.size()) {
      throw new IllegalArgumentException(prompts.size() + " prompts but " + responses.size() + " responses");
    }
    if (training) {
      return run(manager, prompts, responses, true);
    }
    try (NoGrad ignored = NoGrad.enter()) {
      return run(manager, prompts, responses, false);
    }
  }

  /**
   * Chosen and rejected responses to the same prompts as ONE forward pass of 2N sequences (chosen first), so a
   * DPO step runs the policy once per batch and both halves see identical numerics.
   */
  public Pairs computePairs(NDManager manager, List<int[]> prompts, List<int[]> chosen, List<int[]> rejected,
      boolean training) {
    if (prompts.size() != chosen.size() || prompts.size() != rejected.size()) {
      throw new IllegalArgumentException(prompts.size() + " prompts, " + chosen.size() + " chosen, "
          + rejected.size() + " rejected");
    }
    List<int[]> allPrompts = new ArrayList<>(prompts);
    allPrompts.addAll(prompts);
    List<int[]> allResponses = new ArrayList<>(chosen);
    allResponses.addAll(rejected);
    Batch all = compute(manager, allPrompts, allResponses, training);
    int n = prompts.size();
    return new Pairs(slice(all, 0, n, manager), slice(all, n, 2 * n, manager));
  }

  private static Batch slice(Batch b, int from, int to, NDManager manager) {
    String range = from + ":" + to;
    return new Batch(scopedGet(b.sum(), range, manager), scopedGet(b.mean(), range, manager),
        scopedGet(b.count(), range, manager));
  }

  private static NDArray scopedGet(NDArray a, String range, NDManager manager) {
    NDArray part = a.get(range);
    part.attach(manager);
    return part;
  }

  /**
   * Teacher-forced log-probability of every response token, {@code result[i][j]} = log pi(responses[i][j] |
   * prompts[i] + responses[i][..j]), from one forward pass without graph: scores tokens sampled from another model
   * (the sampled KL estimate needs log pi_SFT of the policy's samples). Prompts must not be empty; an empty
   * response gives an empty row.
   */
  public double[][] tokenLogProbs(NDManager manager, List<int[]> prompts, List<int[]> responses) {
    if (prompts.size() != responses.size()) {
      throw new IllegalArgumentException(prompts.size() + " prompts but " + responses.size() + " responses");
    }
    int n = prompts.size();
    int vocab = model.config().vocabSize();
    int length = 1;
    for (int i = 0; i < n; i++) {
      if (prompts.get(i).length == 0) {
        throw new IllegalArgumentException("sequence " + i + " has an empty prompt: its first response token has "
            + "no position that predicts it");
      }
      length = Math.max(length, prompts.get(i).length + responses.get(i).length);
    }
    int[] ids = new int[n * length];
    long[] next = new long[n * length];
    for (int i = 0; i < n; i++) {
      int[] p = prompts.get(i);
      int[] r = responses.get(i);
      for (int t = 0; t < p.length + r.length; t++) {
        int token = t < p.length ? p[t] : r[t - p.length];
        if (token < 0 || token >= vocab) {
          throw new IllegalArgumentException("sequence " + i + ", " + (t < p.length ? "prompt" : "response")
              + " position " + (t < p.length ? t : t - p.length) + ": token id " + token
              + " is outside the vocabulary of " + vocab);
        }
        ids[i * length + t] = token;
        if (t > 0) {
          next[i * length + t - 1] = token;
        }
      }
    }
    float[] picked;
    try (NoGrad ignored = NoGrad.enter(); NDManager scope = manager.newSubManager()) {
      NDArray logits = model.logits(scope.create(ids, new Shape(n, length)), false);
      picked = logits.logSoftmax(2).gather(scope.create(next, new Shape(n, length, 1)), 2).toFloatArray();
    }
    double[][] out = new double[n][];
    for (int i = 0; i < n; i++) {
      int from = i * length + prompts.get(i).length - 1; // position predicting response token 0
      out[i] = new double[responses.get(i).length];
      for (int j = 0; j < out[i].length; j++) {
        out[i][j] = picked[from + j];
      }
    }
    return out;
  }

  private Batch run(NDManager manager, List<int[]> prompts, List<int[]> responses, boolean training) {
    ModelConfig config = model.config();
    int n = prompts.size();
    if (n == 0) {
      throw new IllegalArgumentException("empty batch");
    }
    int length = 0;
    for (int i = 0; i < n; i++) {
      if (responses.get(i).length == 0) {
        throw new IllegalArgumentException("sequence " + i + " has an empty response");
      }
      length = Math.max(length, prompts.get(i).length + responses.get(i).length);
    }
    int pad = config.padTokenId() >= 0 ? config.padTokenId() : 0;
    int[] ids = new int[n * length];
    // Target of position t is token t + 1; the last position has none (masked). Full-length targets let the
    // log-softmax run on the whole logits array: slicing off the last position would cost a [N, L, V] copy
    // in the backward pass.
    long[] targets = new long[n * length];
    float[] mask = new float[n * length];
    int[] counts = new int[n];
    for (int i = 0; i < n; i++) {
      int[] p = prompts.get(i);
      int[] r = responses.get(i);
      java.util.Arrays.fill(ids, i * length, (i + 1) * length, pad);
      for (int t = 0; t < p.length + r.length; t++) {
        int token = t < p.length ? p[t] : r[t - p.length];
        if (token < 0 || token >= config.vocabSize()) {
          throw new IllegalArgumentException("sequence " + i + ", " + (t < p.length ? "prompt" : "response")
              + " position " + (t < p.length ? t : t - p.length) + ": token id " + token
              + " is outside the vocabulary of " + config.vocabSize());
        }
        ids[i * length + t] = token;
      }
      // Response token j sits at p.length + j and is predicted at position p.length + j - 1.
      for (int t = 0; t < length - 1; t++) {
        targets[i * length + t] = ids[i * length + t + 1];
        boolean response = t + 1 >= p.length && t + 1 < p.length + r.length;
        mask[i * length + t] = response ? 1f : 0f;
      }
      counts[i] = r.length;
    }
    try (NDManager scope = manager.newSubManager()) {
      NDArray input = scope.create(ids, new Shape(n, length));
      NDArray logits = model.logits(input, training);
      NDArray logp = logits.logSoftmax(2);
      // Backward reads the gather index and the mask after this scope is gone: they must own their memory.
      NDArray index = CausalLM.owned(scope.create(targets, new Shape(n, length, 1)));
      NDArray picked = logp.gather(index, 2).squeeze(2);
      NDArray sum = picked.mul(CausalLM.owned(scope.create(mask, new Shape(n, length)))).sum(new int[] {1});
      NDArray count = scope.create(counts);
      NDArray mean = sum.div(count.toType(DataType.FLOAT32, false));
      sum.attach(manager);
      mean.attach(manager);
      count.attach(manager);
      return new Batch(sum, mean, count);
    }
  }
}
