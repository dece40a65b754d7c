package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;

/**
 * log pi(response | prompt) for a batch of (prompt ids, response ids): per sequence the sum and the mean of
 * the response tokens' log-probabilities and their count, prompt tokens excluded. Sequences are
 * {@code prompt + response}, right-padded to the longest, and run as one forward pass through the decoder; only
 * the positions that predict a response token go through the LM head, and each log-probability is
 * logit[target] - logsumexp(logits) in float32 (no [N, L, V] logits or log-softmax: with a 128k vocabulary those
 * were gigabytes per batch). DPO, SFT, the reference stage and evaluation all use this.
 *
 * <p>With {@code training} the results are part of the autograd graph (call inside a GradientCollector and
 * backpropagate through {@link Batch#sum()} or {@link Batch#mean()}); without it nothing is recorded, on any
 * thread.
 *
 * <p>On request ({@code logitSums}) the same pass also gives, per sequence, the sum over its predicting positions
 * of the logits' mean over the vocabulary (TRL's {@code logits/chosen} metric is their mean over a batch's
 * positions): a detached reduction of the head's logits while they exist, [rows] floats, no second pass.
 */
public final class SequenceLogProbs {
  /** Most rows the LM head runs on at once without graph: [HEAD_CHUNK_ROWS, V] float32 logits (a knob for tests). */
  static int HEAD_CHUNK_ROWS = 1024;

  private final CausalLM model;

  public SequenceLogProbs(CausalLM model) {
    this.model = model;
  }

  /**
   * Per-sequence results, float32 [N] ({@code count} int32 [N]), attached to the caller's manager.
   * The helpers copy them to Java arrays. {@code logitSum}: the sum over the positions that predict a response
   * token of the mean logit over the vocabulary, float32 [N] without graph; null unless asked for.
   */
  public record Batch(NDArray sum, NDArray mean, NDArray count, NDArray logitSum) {
    public Batch(NDArray sum, NDArray mean, NDArray count) {
      this(sum, mean, count, null);
    }

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
    return compute(manager, prompts, responses, training, false);
  }

  /** As {@link #compute(NDManager, List, List, boolean)}, with {@link Batch#logitSum()} when {@code logitSums}. */
  public Batch compute(NDManager manager, List<int[]> prompts, List<int[]> responses, boolean training,
      boolean logitSums) {
    if (prompts.size() != responses.size()) {
      throw new IllegalArgumentException(prompts.size() + " prompts but " + responses.size() + " responses");
    }
    if (training) {
      return run(manager, prompts, responses, true, logitSums);
    }
    try (NoGrad ignored = NoGrad.enter()) {
      return run(manager, prompts, responses, false, logitSums);
    }
  }

  /**
   * Chosen and rejected responses to the same prompts as ONE forward pass of 2N sequences (chosen first), so a
   * DPO step runs the policy once per batch and both halves see identical numerics.
   */
  public Pairs computePairs(NDManager manager, List<int[]> prompts, List<int[]> chosen, List<int[]> rejected,
      boolean training) {
    return computePairs(manager, prompts, chosen, rejected, training, false);
  }

  /** As {@link #computePairs(NDManager, List, List, List, boolean)}, with logit sums when {@code logitSums}. */
  public Pairs computePairs(NDManager manager, List<int[]> prompts, List<int[]> chosen, List<int[]> rejected,
      boolean training, boolean logitSums) {
    if (prompts.size() != chosen.size() || prompts.size() != rejected.size()) {
      throw new IllegalArgumentException(prompts.size() + " prompts, " + chosen.size() + " chosen, "
          + rejected.size() + " rejected");
    }
    List<int[]> allPrompts = new ArrayList<>(prompts);
    allPrompts.addAll(prompts);
    List<int[]> allResponses = new ArrayList<>(chosen);
    allResponses.addAll(rejected);
    Batch all = compute(manager, allPrompts, allResponses, training, logitSums);
    int n = prompts.size();
    return new Pairs(slice(all, 0, n, manager), slice(all, n, 2 * n, manager));
  }

  private static Batch slice(Batch b, int from, int to, NDManager manager) {
    String range = from + ":" + to;
    return new Batch(scopedGet(b.sum(), range, manager), scopedGet(b.mean(), range, manager),
        scopedGet(b.count(), range, manager), b.logitSum() == null ? null : scopedGet(b.logitSum(), range, manager));
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
    int[] ids = PackedIds.pack(prompts, responses, length, vocab, 0);
    int rows = 0;
    for (int[] r : responses) {
      rows += r.length;
    }
    // Response token j of sequence i is predicted at position p.length + j - 1 of row i.
    long[] positions = new long[rows];
    long[] targets = new long[rows];
    int k = 0;
    for (int i = 0; i < n; i++) {
      int[] p = prompts.get(i);
      int[] r = responses.get(i);
      for (int j = 0; j < r.length; j++, k++) {
        positions[k] = (long) i * length + p.length + j - 1;
        targets[k] = r[j];
      }
    }
    float[] picked = new float[0];
    if (rows > 0) {
      try (NoGrad ignored = NoGrad.enter(); NDManager scope = manager.newSubManager()) {
        NDArray hidden = model.hiddenStates(scope.create(ids, new Shape(n, length)), false);
        picked = targetLogProbs(scope, hidden, positions, targets, false, false).logp().toFloatArray();
      }
    }
    double[][] out = new double[n][];
    int from = 0;
    for (int i = 0; i < n; i++) {
      out[i] = new double[responses.get(i).length];
      for (int j = 0; j < out[i].length; j++) {
        out[i][j] = picked[from + j];
      }
      from += out[i].length;
    }
    return out;
  }

  private Batch run(NDManager manager, List<int[]> prompts, List<int[]> responses, boolean training,
      boolean logitSums) {
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
    int[] ids = PackedIds.pack(prompts, responses, length, config.vocabSize(), pad);
    int[] counts = new int[n];
    int rows = 0;
    for (int i = 0; i < n; i++) {
      counts[i] = responses.get(i).length;
      rows += predicted(prompts.get(i).length, counts[i]);
    }
    // Response token j sits at p.length + j and is predicted at position p.length + j - 1 (with an empty prompt
    // the first response token has no predicting position, yet counts towards the mean, as it always has).
    long[] positions = new long[rows];
    long[] targets = new long[rows];
    float[] segments = new float[n * rows]; // [N, rows]: 1 where a row belongs to sequence i
    int k = 0;
    for (int i = 0; i < n; i++) {
      int[] p = prompts.get(i);
      int[] r = responses.get(i);
      for (int j = r.length - predicted(p.length, r.length); j < r.length; j++, k++) {
        positions[k] = (long) i * length + p.length + j - 1;
        targets[k] = r[j];
        segments[i * rows + k] = 1f;
      }
    }
    try (NDManager scope = manager.newSubManager()) {
      NDArray hidden = model.hiddenStates(scope.create(ids, new Shape(n, length)), training);
      Rows picked = targetLogProbs(scope, hidden, positions, targets, training, logitSums);
      // Per-sequence sums as one matmul with the row-to-sequence indicator, which backward keeps: owned.
      NDArray perSequence = CausalLM.owned(scope.create(segments, new Shape(n, rows)));
      NDArray sum = perSequence.matMul(picked.logp().reshape(rows, 1)).reshape(n);
      NDArray count = scope.create(counts);
      NDArray mean = sum.div(count.toType(DataType.FLOAT32, false));
      NDArray logitSum = null;
      if (logitSums) {
        try (NoGrad ignored = NoGrad.enter()) { // detached inputs: nothing to record anyway
          logitSum = perSequence.matMul(picked.logitMean().reshape(rows, 1)).reshape(n);
        }
        logitSum.attach(manager);
      }
      sum.attach(manager);
      mean.attach(manager);
      count.attach(manager);
      return new Batch(sum, mean, count, logitSum);
    }
  }

  /**
   * How many of a response's tokens have a position predicting them: all, but the first with an empty prompt (the
   * positions {@link Batch#logitSum()} sums over).
   */
  public static int predicted(int promptLength, int responseLength) {
    return promptLength > 0 ? responseLength : Math.max(0, responseLength - 1);
  }

  /** Per selected row: the target's log-probability and (when asked for) the mean logit, float32 [rows]. */
  private record Rows(NDArray logp, NDArray logitMean) {}

  /**
   * log p(targets[k]) at flattened position {@code positions[k]} of {@code hidden} [N, L, d]: float32 [rows],
   * attached to {@code scope}; with {@code logitMeans} also each row's logits averaged over the vocabulary
   * (detached). Only the selected rows go through the LM head, in chunks of at most
   * {@link #HEAD_CHUNK_ROWS} without graph, so the largest array is [chunk, V], never [N, L, V]; each row's
   * log-probability is logit[target] - logsumexp(logits), with no [rows, V] log-softmax. Under autograd the head
   * runs as one chunk: every chunk's logits would be kept for backward anyway, so chunking would save nothing
   * without recomputing them.
   */
  private Rows targetLogProbs(NDManager scope, NDArray hidden, long[] positions, long[] targets,
      boolean training, boolean logitMeans) {
    int rows = positions.length;
    long d = hidden.getShape().get(2);
    // The gather indices are kept by backward, past this scope's Java buffers: they must own their memory.
    NDArray index = CausalLM.owned(scope.create(positions));
    NDArray selected = hidden.reshape(-1, d).get(scope, new NDIndex("{}", index));
    NDArray target = CausalLM.owned(scope.create(targets, new Shape(rows, 1)));
    int chunk = training ? rows : Math.max(1, HEAD_CHUNK_ROWS);
    if (rows <= chunk) {
      return chunkLogProbs(selected, target, training, logitMeans);
    }
    NDList logps = new NDList();
    NDList means = new NDList();
    for (int from = 0; from < rows; from += chunk) {
      String range = from + ":" + Math.min(rows, from + chunk);
      try (NDManager part = scope.newSubManager()) {
        Rows r = chunkLogProbs(selected.get(part, new NDIndex(range)), target.get(part, new NDIndex(range)),
            false, logitMeans);
        r.logp().attach(scope);
        logps.add(r.logp());
        if (logitMeans) {
          r.logitMean().attach(scope);
          means.add(r.logitMean());
        }
      }
    }
    NDArray all = NDArrays.concat(logps);
    logps.close();
    NDArray allMeans = null;
    if (logitMeans) {
      allMeans = NDArrays.concat(means);
      means.close();
    }
    return new Rows(all, allMeans);
  }

  /**
   * logit[target] - logsumexp(logit) per row of hidden rows [m, d] and targets [m, 1]: float32 [m]; with
   * {@code logitMeans} also the rows' mean logits [m], from a detached view (outside any graph).
   */
  private Rows chunkLogProbs(NDArray rows, NDArray target, boolean training, boolean logitMeans) {
    // Closed at once: without graph that frees the [m, V] logits before the next chunk; with graph, autograd
    // keeps what backward needs.
    try (NDArray logits = model.head(rows, training)) {
      NDArray logp = FusedOps.targetLogProbs(logits, target, model.fusedOps());
      if (!logitMeans) {
        return new Rows(logp, null);
      }
      try (NDArray detached = logits.stopGradient()) {
        return new Rows(logp, detached.mean(new int[] {1}));
      }
    }
  }
}
