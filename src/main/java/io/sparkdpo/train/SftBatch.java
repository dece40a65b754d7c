package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;

/**
 * A right-padded batch of prompt + response sequences for {@link SftLoss}: the model reads {@code inputIds}; the
 * logits at position t are scored against {@code targets[t] = inputIds[t + 1]}; {@code lossMask} selects the
 * positions whose target is a response token (completion-only) or any real token after the first (whole
 * sequence), as transformers does with labels of -100. Padding never counts; in a causal model it sits after
 * the real tokens, so it cannot change their logits.
 */
public record SftBatch(int batchSize, int length, long[] inputIds, long[] targets, float[] lossMask) {

  /**
   * @param prompts prompt token ids per example
   * @param responses response token ids per example (EOS already appended where wanted)
   * @param completionOnly true: loss on response tokens only; false: on prompt and response
   */
  public static SftBatch of(List<int[]> prompts, List<int[]> responses, int padId, boolean completionOnly) {
    if (prompts.size() != responses.size() || prompts.isEmpty()) {
      throw new IllegalArgumentException("need as many prompts as responses, and at least one; got "
          + prompts.size() + " and " + responses.size());
    }
    int b = prompts.size();
    int t = 0;
    for (int i = 0; i < b; i++) {
      t = Math.max(t, prompts.get(i).length + responses.get(i).length);
    }
    long[] input = new long[b * t];
    long[] target = new long[b * t];
    float[] mask = new float[b * t];
    java.util.Arrays.fill(input, padId);
    java.util.Arrays.fill(target, padId);
    for (int i = 0; i < b; i++) {
      int[] p = prompts.get(i);
      int[] r = responses.get(i);
      int len = p.length + r.length;
      if (r.length == 0) {
        throw new IllegalArgumentException("example " + i + " has an empty response");
      }
      for (int j = 0; j < len; j++) {
        input[i * t + j] = j < p.length ? p[j] : r[j - p.length];
      }
      for (int j = 0; j + 1 < len; j++) {
        target[i * t + j] = input[i * t + j + 1];
        boolean targetIsResponse = j + 1 >= p.length;
        mask[i * t + j] = (!completionOnly || targetIsResponse) ? 1f : 0f;
      }
    }
    return new SftBatch(b, t, input, target, mask);
  }

  /** Loss-bearing positions in this batch (the denominator of the mean loss). */
  public long tokens() {
    long n = 0;
    for (float m : lossMask) {
      n += m > 0 ? 1 : 0;
    }
    return n;
  }

  /** {@code [inputIds, targets, lossMask]} as [B, T] arrays in {@code manager}. */
  public NDList toArrays(NDManager manager) {
    Shape shape = new Shape(batchSize, length);
    NDArray in = manager.create(inputIds, shape);
    NDArray tg = manager.create(targets, shape);
    NDArray mk = manager.create(lossMask, shape);
    return new NDList(in, tg, mk);
  }
}
