package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.NoGrad;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reward modelling over preference pairs: the reward model (a causal LM with a {@code score} head,
 * {@link CausalLM#scores}) scores prompt + chosen and prompt + rejected in one forward of 2B right-padded rows, then
 * {@link RewardLoss}. Statistics: {@code [pairs, summed loss, pairs ranked right, summed chosen reward, summed rejected
 * reward]}, reported with the names of TRL's RewardTrainer ({@code loss}, {@code accuracy}, {@code margin},
 * {@code mean_reward}) plus the mean chosen and rejected rewards under DPO's names ({@code rewards/chosen},
 * {@code rewards/rejected}). A pair counts as ranked right when its chosen reward is strictly higher, as TRL's
 * {@code accuracy}. TRL's {@code min_reward}/{@code max_reward} are left out: they are not means, and the metrics of
 * several replicas and steps combine as weighted means. Pairs with a reward margin ({@link PreparedPair#margin}, TRL's
 * {@code margin} column) train on {@code -log s(r_w - r_l - margin)}; a batch mixing pairs with and without one
 * takes 0 for the latter, which is the loss without a margin.
 */
public final class RewardObjective implements Objective<PreparedPair> {
  public static final String ACCURACY = "accuracy";
  public static final String MARGIN = "margin";
  public static final String MEAN_REWARD = "mean_reward";
  private static final int WIDTH = 5;

  private final CausalLM model;
  private final RewardLoss loss;
  private final int padId;

  /** @param model a reward model ({@code *ForSequenceClassification}), owned by the session */
  public RewardObjective(CausalLM model, RewardLoss loss) {
    if (!model.config().scoresSequences()) {
      throw new IllegalArgumentException("a reward objective needs a reward model (*ForSequenceClassification), got "
          + model.config().architecture());
    }
    this.model = model;
    this.loss = loss;
    this.padId = model.config().padTokenId();
  }

  @Override
  public String id(PreparedPair pair) {
    return pair.pairId();
  }

  @Override
  public int tokens(PreparedPair pair) {
    return pair.pairTokens();
  }

  @Override
  public Forward forward(NDManager scope, List<PreparedPair> batch) {
    Scored s = run(scope, batch, true);
    return new Forward(s.losses().sum(), s.stats()[1], s.stats(), batch.size());
  }

  @Override
  public double[] evaluate(NDManager scope, List<PreparedPair> batch) {
    try (NoGrad ignored = NoGrad.enter()) {
      return run(scope, batch, false).stats();
    }
  }

  private record Scored(NDArray losses, double[] stats) {}

  private Scored run(NDManager scope, List<PreparedPair> batch, boolean training) {
    int n = batch.size();
    int length = 0;
    for (PreparedPair p : batch) {
      length = Math.max(length, p.promptIds().length + Math.max(p.chosenIds().length, p.rejectedIds().length));
    }
    // Rows 0..n-1: prompt + chosen; rows n..2n-1: prompt + rejected; right-padded with pad_token_id, which the
    // score head's pooling skips.
    int[] ids = new int[2 * n * length];
    java.util.Arrays.fill(ids, padId);
    for (int i = 0; i < n; i++) {
      PreparedPair p = batch.get(i);
      put(ids, i * length, p.promptIds(), p.chosenIds());
      put(ids, (n + i) * length, p.promptIds(), p.rejectedIds());
    }
    NDArray rewards = model.scores(scope.create(ids, new Shape(2L * n, length)), training);
    NDArray chosen = rewards.get("0:" + n);
    NDArray rejected = rewards.get(n + ":");
    NDArray losses = loss.losses(chosen, rejected, margins(scope, batch));
    float[] c = chosen.toFloatArray();
    float[] r = rejected.toFloatArray();
    float[] l = losses.toFloatArray();
    double[] stats = new double[WIDTH];
    stats[0] = n;
    for (int i = 0; i < n; i++) {
      stats[1] += l[i];
      stats[2] += c[i] > r[i] ? 1 : 0;
      stats[3] += c[i];
      stats[4] += r[i];
    }
    return new Scored(losses, stats);
  }

  /** TRL's margins as float32 [B] (its collator's dtype), or null when no pair has one. */
  private static NDArray margins(NDManager scope, List<PreparedPair> batch) {
    if (batch.stream().allMatch(p -> p.margin() == null)) {
      return null;
    }
    float[] m = new float[batch.size()];
    for (int i = 0; i < m.length; i++) {
      Double v = batch.get(i).margin();
      m[i] = v == null ? 0f : v.floatValue();
    }
    // A copy in libtorch's memory: the Java buffer behind create(float[]) may be freed before backward runs.
    try (NDArray wrapped = scope.create(m)) {
      return wrapped.duplicate();
    }
  }

  private static void put(int[] ids, int from, int[] prompt, int[] response) {
    System.arraycopy(prompt, 0, ids, from, prompt.length);
    System.arraycopy(response, 0, ids, from + prompt.length, response.length);
  }

  @Override
  public double[] emptyStats() {
    return new double[WIDTH];
  }

  @Override
  public long items(double[] stats) {
    return Math.round(stats[0]);
  }

  @Override
  public Map<String, Double> metrics(double[] stats) {
    double n = stats[0];
    Map<String, Double> m = new LinkedHashMap<>();
    m.put(MetricNames.LOSS, n > 0 ? stats[1] / n : 0.0);
    m.put(ACCURACY, n > 0 ? stats[2] / n : 0.0);
    m.put(MARGIN, n > 0 ? (stats[3] - stats[4]) / n : 0.0);
    m.put(MEAN_REWARD, n > 0 ? (stats[3] + stats[4]) / (2 * n) : 0.0);
    m.put(MetricNames.REWARDS_CHOSEN, n > 0 ? stats[3] / n : 0.0);
    m.put(MetricNames.REWARDS_REJECTED, n > 0 ? stats[4] / n : 0.0);
    return m;
  }

  @Override
  public void close() {
    // the reward model belongs to the session
  }
}
