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
 *
 * <p>Every sampled token also comes with its log-probability under the model's own distribution (log-softmax of the
 * raw logits: temperature 1, no top-k or top-p), which is what a sampled estimate of KL(pi || pi_ref) needs.
 */
public final class Generator {
  private final CausalLM model;
  private final Set<Integer> stopIds;

  /**
   * One row's result: the new tokens (the stop token excluded), whether a stop token ended it and which
   * ({@code stopToken}, -1 when none did), and the log-probability under the unfiltered distribution of every
   * sampled token, {@link #sampledTokens()}: the new tokens and then the stop token when there is one.
   */
  public record Generation(int[] tokens, boolean stopped, int stopToken, double[] logProbs) {
    /** What was drawn: {@link #tokens()} followed by the stop token when one ended the row. */
    public int[] sampledTokens() {
      if (!stopped) {
        return tokens;
      }
      int[] all = Arrays.copyOf(tokens, tokens.length + 1);
      all[tokens.length] = stopToken;
      return all;
    }
  }

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

  /**
   * Like {@link #generate(List, SamplingSettings)}, but row b draws from its own seed {@code rowSeeds[b]} (the
   * settings' seed is not used): a row's tokens then depend on its prompt and seed only, not on which other rows
   * share the batch, so work can be regrouped (across Spark partitions, say) without changing what is sampled.
   */
  public List<Generation> generate(List<int[]> prompts, SamplingSettings settings, long[] rowSeeds) {
    if (rowSeeds.length != prompts.size()) {
      throw new IllegalArgumentException(prompts.size() + " prompts but " + rowSeeds.length + " row seeds");
    }
    return generate(prompts, settings, rowSeeds, true);
  }

  /** {@code useCache == false} recomputes the whole sequence each step: slower, for checking the cache. */
  List<Generation> generate(List<int[]> prompts, SamplingSettings settings, boolean useCache) {
    long[] seeds = new long[prompts.size()];
    for (int b = 0; b < seeds.length; b++) {
      seeds[b] = settings.seed() * 0x9E3779B97F4A7C15L + b;
    }
    return generate(prompts, settings, seeds, useCache);
  }

  private List<Generation> generate(List<int[]> prompts, SamplingSettings settings, long[] rowSeeds,
      boolean useCache) {
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
      random[b] = new SplittableRandom(rowSeeds[b]);
    }
    List<List<Integer>> out = new ArrayList<>();
    List<List<Double>> logProbs = new ArrayList<>();
    boolean[] stopped = new boolean[batch];
    int[] stopToken = new int[batch];
    Arrays.fill(stopToken, -1);
    for (int b = 0; b < batch; b++) {
      out.add(new ArrayList<>());
      logProbs.add(new ArrayList<>());
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
            logProbs.get(b).add(logProb(logits, b * config.vocabSize(), config.vocabSize(), next));
            if (stopIds.contains(next)) {
              stopped[b] = true;
              stopToken[b] = next;
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
      result.add(new Generation(out.get(b).stream().mapToInt(Integer::intValue).toArray(), stopped[b], stopToken[b],
          logProbs.get(b).stream().mapToDouble(Double::doubleValue).toArray()));
    }
    return result;
  }

  /** log softmax(logits)[token] of one row, in double precision: the model's own, unfiltered distribution. */
  static double logProb(float[] logits, int offset, int vocab, int token) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      max = Math.max(max, logits[offset + i]);
    }
    double z = 0;
    for (int i = 0; i < vocab; i++) {
      z += Math.exp(logits[offset + i] - max);
    }
    return logits[offset + token] - max - Math.log(z);
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
