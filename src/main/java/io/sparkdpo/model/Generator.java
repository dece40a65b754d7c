package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Autoregressive generation for a batch of prompts: greedy or sampled (temperature, top-k, top-p), with a
 * key/value cache so each step runs only the new token, stopping per row on a stop token (the config's EOS
 * ids unless given) or after {@code maxNewTokens}. Prompts of different lengths are left-padded and masked.
 * Sampling happens in Java on the float32 logits with a per-row {@link SplittableRandom}, so the same seed
 * gives the same tokens on any machine and in any batch. Runs without recording gradients, on any thread.
 */
public final class Generator {
  private final CausalLM model;
  private final Set<Integer> stopIds;

  /** One row's result: the new tokens (the stop token excluded) and whether a stop token ended it. */
  public record Generation(int[] tokens, boolean stopped) {}

  public Generator(CausalLM model) {
    this(model, new HashSet<>(model.config().eosTokenIds()));
  }

  public Generator(CausalLM model, Set<Integer> stopIds) {
    this.model = model;
    this.stopIds = Set.copyOf(stopIds);
  }

  public List<Generation> generate(List<int[]> prompts, SamplingSettings settings) {
    return generate(prompts, settings, true);
  }

  /** {@code useCache == false} recomputes the whole sequence each step: slower, for checking the cache. */
  List<Generation> generate(List<int[]> prompts, SamplingSettings settings, boolean useCache) {
    ModelConfig config = model.config();
    int batch = prompts.size();
    int promptLength = 0;
    for (int i = 0; i < batch; i++) {
      int[] p = prompts.get(i);
      if (p.length == 0) {
        throw new IllegalArgumentException("prompt " + i + " is empty");
      }
      for (int t = 0; t < p.length; t++) {
        if (p[t] < 0 || p[t] >= config.vocabSize()) {
          throw new IllegalArgumentException("prompt " + i + ", position " + t + ": token id " + p[t]
              + " is outside the vocabulary of " + config.vocabSize());
        }
      }
      promptLength = Math.max(promptLength, p.length);
    }
    int steps = Math.min(settings.maxNewTokens(), config.maxPositionEmbeddings() - promptLength);
    if (steps < 1) {
      throw new IllegalArgumentException("prompts of " + promptLength + " tokens leave no room under "
          + "max_position_embeddings=" + config.maxPositionEmbeddings());
    }
    int pad = config.padTokenId() >= 0 ? config.padTokenId() : 0;
    int total = promptLength + steps;
    int[][] sequence = new int[batch][total];
    boolean[][] keyMask = new boolean[batch][total];
    long[] firstPosition = new long[batch]; // position of array column 0 (negative under left padding)
    SplittableRandom[] random = new SplittableRandom[batch];
    for (int b = 0; b < batch; b++) {
      int[] p = prompts.get(b);
      int padding = promptLength - p.length;
      Arrays.fill(sequence[b], pad);
      System.arraycopy(p, 0, sequence[b], padding, p.length);
      Arrays.fill(keyMask[b], padding, total, true);
      firstPosition[b] = -padding;
      random[b] = new SplittableRandom(settings.seed() * 0x9E3779B97F4A7C15L + b);
    }
    List<List<Integer>> out = new ArrayList<>();
    boolean[] stopped = new boolean[batch];
    for (int b = 0; b < batch; b++) {
      out.add(new ArrayList<>());
    }
    try (NoGrad ignored = NoGrad.enter(); NDManager manager = NDManager.newBaseManager(model.device(), "PyTorch");
        CausalLM.KvCache cache = useCache ? model.newCache(manager) : null) {
      int length = promptLength;
      int fed = 0; // columns already in the cache
      for (int step = 0; step < steps; step++) {
        float[] logits;
        try (NDManager scope = manager.newSubManager()) {
          int from = useCache ? fed : 0;
          int[] ids = new int[batch * (length - from)];
          long[] start = new long[batch];
          boolean[][] visible = new boolean[batch][];
          for (int b = 0; b < batch; b++) {
            System.arraycopy(sequence[b], from, ids, b * (length - from), length - from);
            start[b] = firstPosition[b] + from;
            visible[b] = Arrays.copyOf(keyMask[b], length);
          }
          NDArray input = scope.create(ids, new Shape(batch, length - from));
          logits = model.forward(input, start, visible, cache, true).toFloatArray();
          fed = length;
        }
        boolean allStopped = true;
        for (int b = 0; b < batch; b++) {
          int next = stopped[b] ? pad : pick(logits, b * config.vocabSize(), config.vocabSize(), settings, random[b]);
          sequence[b][length] = next;
          if (!stopped[b]) {
            if (stopIds.contains(next)) {
              stopped[b] = true;
            } else {
              out.get(b).add(next);
            }
          }
          allStopped &= stopped[b];
        }
        length++;
        if (allStopped) {
          break;
        }
      }
    }
    List<Generation> result = new ArrayList<>();
    for (int b = 0; b < batch; b++) {
      result.add(new Generation(out.get(b).stream().mapToInt(Integer::intValue).toArray(), stopped[b]));
    }
    return result;
  }

  /** The next token of one row from its logits {@code logits[offset, offset + vocab)}. */
  static int pick(float[] logits, int offset, int vocab, SamplingSettings s, SplittableRandom random) {
    if (s.isGreedy()) {
      int best = 0;
      for (int i = 1; i < vocab; i++) {
        if (logits[offset + i] > logits[offset + best]) {
          best = i;
        }
      }
      return best;
    }
    Integer[] order = new Integer[vocab];
    for (int i = 0; i < vocab; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Float.compare(logits[offset + b], logits[offset + a]));
    int keep = s.topK() > 0 ? Math.min(s.topK(), vocab) : vocab;
    // top-k keeps ties with the k-th logit, as transformers' TopKLogitsWarper does.
    while (keep < vocab && logits[offset + order[keep]] == logits[offset + order[keep - 1]]) {
      keep++;
    }
    double max = logits[offset + order[0]] / s.temperature();
    double[] p = new double[keep];
    double z = 0;
    for (int i = 0; i < keep; i++) {
      p[i] = Math.exp(logits[offset + order[i]] / s.temperature() - max);
      z += p[i];
    }
    // top-p: the smallest prefix (by descending probability) whose mass reaches top_p, at least one token.
    int nucleus = keep;
    if (s.topP() < 1) {
      double cumulative = 0;
      for (int i = 0; i < keep; i++) {
        cumulative += p[i] / z;
        if (cumulative >= s.topP()) {
          nucleus = i + 1;
          break;
        }
      }
    }
    double mass = 0;
    for (int i = 0; i < nucleus; i++) {
      mass += p[i];
    }
    double u = random.nextDouble() * mass;
    for (int i = 0; i < nucleus; i++) {
      u -= p[i];
      if (u < 0) {
        return order[i];
      }
    }
    return order[nucleus - 1];
  }
}
