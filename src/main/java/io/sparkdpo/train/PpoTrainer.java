package io.sparkdpo.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.sparkdpo.config.LrSchedulerType;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.Generator;
import io.sparkdpo.model.ResponseTokens;
import io.sparkdpo.model.SamplingSettings;
import io.sparkdpo.model.ValueHead;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PPO against a frozen pi_SFT in one JVM, one {@link #update} per rollout batch, TRL 0.22.2's loop:
 * <ol>
 *   <li>sample one response per prompt from the current policy at {@code temperature} (no top-k, no top-p), each row
 *       seeded from the run seed, the update and the row, so a rerun draws the same tokens;</li>
 *   <li>score each response ({@link Scorer}: a reward model, or a ground-truth reward as an oracle);</li>
 *   <li>without graph, in micro-batches: the policy's log-probs and values and pi_SFT's log-probs of the sampled
 *       tokens, at the same temperature;</li>
 *   <li>{@link PpoRollout}: KL-penalised rewards, GAE, whitened advantages;</li>
 *   <li>{@code ppo_epochs} passes over the batch, each in a fresh seeded order, split into {@code mini_batches};
 *       each mini-batch runs forward and backward per micro-batch ({@link PpoObjective}) and takes one optimizer step
 *       ({@link OptimizerStep}: token mean, global-norm clipping, AdamW) over the policy's trainable parameters and
 *       the value head.</li>
 * </ol>
 * The learning rate follows its schedule per optimizer step (TRL steps its scheduler once per rollout batch; with a
 * constant rate the two agree). The distributed form (W replicas with the ring all-reduce, checkpoints) is not here:
 * the reducer is {@link GradientReducer#SINGLE}.
 */
public final class PpoTrainer implements AutoCloseable {
  /** The reward of a response (its tokens without the stop token) to a prompt; deterministic. */
  @FunctionalInterface
  public interface Scorer {
    double score(int[] prompt, int[] response);
  }

  /**
   * @param miniBatches mini-batches (optimizer steps) per epoch over a rollout batch ({@code num_mini_batches})
   * @param microBatch sequences per forward pass ({@code per_device_train_batch_size})
   * @param responseLength most new tokens per response ({@code response_length})
   */
  public record Settings(PpoHyper hyper, int ppoEpochs, int miniBatches, int microBatch, int responseLength,
      double learningRate, LrSchedulerType schedule, AdamW.Hyper adam, double maxGradNorm, long seed) {
    public Settings {
      if (ppoEpochs < 1 || miniBatches < 1 || microBatch < 1 || responseLength < 1) {
        throw new IllegalArgumentException("num_ppo_epochs, num_mini_batches, micro-batch and response_length must "
            + "be >= 1, got " + ppoEpochs + ", " + miniBatches + ", " + microBatch + ", " + responseLength);
      }
    }
  }

  /** What one update did: its rollout and the metrics (rollout, training means, {@code lr}, {@code episode}). */
  public record Update(PpoRollout rollout, Map<String, Double> metrics) {}

  private final CausalLM policy;
  private final ValueHead valueHead;
  private final CausalLM reference;
  private final Scorer scorer;
  private final Settings settings;
  private final PpoObjective objective;
  private final AdamW adamw;
  private final GradientAccumulator accumulator;
  private final OptimizerStep optimizerStep;
  private final NDManager manager;
  private long updates;
  private long optimizerSteps;
  private long episodes;

  /**
   * @param policy trained in place (its {@link CausalLM#trainableParameters()})
   * @param valueHead trained with it
   * @param reference pi_SFT, frozen; read only
   * @param totalUpdates rollout batches the run will take (the schedule's length)
   */
  public PpoTrainer(CausalLM policy, ValueHead valueHead, CausalLM reference, Scorer scorer, Settings settings,
      long totalUpdates) {
    this.policy = policy;
    this.valueHead = valueHead;
    this.reference = reference;
    this.scorer = scorer;
    this.settings = settings;
    this.objective = new PpoObjective(policy, valueHead, settings.hyper());
    LinkedHashMap<String, NDArray> arrays = new LinkedHashMap<>();
    policy.trainableParameters().forEach((name, p) -> arrays.put(name, p.getArray()));
    valueHead.parameters().forEach((name, p) -> arrays.put(name, p.getArray()));
    this.adamw = new AdamW(arrays, settings.adam(), AdamW.decaysByDefault());
    this.accumulator = new GradientAccumulator(new ArrayList<>(arrays.values()));
    long steps = Math.max(1, totalUpdates * settings.ppoEpochs() * settings.miniBatches());
    this.optimizerStep = new OptimizerStep(adamw, new LearningRateSchedule(settings.schedule(),
        settings.learningRate(), 0, steps), settings.maxGradNorm(), GradientReducer.SINGLE);
    this.manager = NDManager.newBaseManager(policy.device(), "PyTorch");
  }

  /** One rollout batch of one response per prompt, then its PPO epochs. */
  public Update update(List<int[]> prompts) {
    int n = prompts.size();
    if (n == 0 || n % settings.miniBatches() != 0) {
      throw new IllegalArgumentException(n + " prompts do not split into " + settings.miniBatches()
          + " equal mini-batches (TRL requires batch_size to be a multiple of num_mini_batches too)");
    }
    long u = updates;
    PpoHyper h = settings.hyper();
    long[] seeds = new long[n];
    for (int i = 0; i < n; i++) {
      seeds[i] = SeededRng.derive(settings.seed(), u * n + i);
    }
    List<Generator.Generation> generations = new Generator(policy).generate(prompts,
        new SamplingSettings(h.temperature(), 0, 1.0, settings.responseLength(), 0), seeds);
    List<String> ids = new ArrayList<>(n);
    List<int[]> responses = new ArrayList<>(n);
    double[] scores = new double[n];
    for (int i = 0; i < n; i++) {
      ids.add("update-" + u + "/row-" + i);
      responses.add(generations.get(i).sampledTokens());
      scores[i] = scorer.score(prompts.get(i), generations.get(i).tokens());
    }
    double[][] logProbs = new double[n][];
    double[][] values = new double[n][];
    double[][] refLogProbs = new double[n][];
    ResponseTokens policyTokens = new ResponseTokens(policy);
    ResponseTokens referenceTokens = new ResponseTokens(reference);
    for (int from = 0; from < n; from += settings.microBatch()) {
      int to = Math.min(n, from + settings.microBatch());
      List<int[]> p = prompts.subList(from, to);
      List<int[]> r = responses.subList(from, to);
      try (NDManager scope = manager.newSubManager()) {
        ResponseTokens.Result pi = policyTokens.compute(scope, p, r, h.temperature(), valueHead, false);
        ResponseTokens.Result ref = referenceTokens.compute(scope, p, r, h.temperature(), null, false);
        double[][] lp = pi.rows(pi.logProbs());
        double[][] v = pi.rows(pi.values());
        double[][] rl = ref.rows(ref.logProbs());
        for (int i = from; i < to; i++) {
          logProbs[i] = lp[i - from];
          values[i] = v[i - from];
          refLogProbs[i] = rl[i - from];
        }
      }
    }
    PpoRollout rollout = PpoRollout.of(ids, prompts, responses, logProbs, refLogProbs, values, scores, h);

    double[] stats = objective.emptyStats();
    int miniSize = n / settings.miniBatches();
    for (int epoch = 0; epoch < settings.ppoEpochs(); epoch++) {
      int[] order = new int[n];
      for (int i = 0; i < n; i++) {
        order[i] = i;
      }
      new SeededRng(SeededRng.derive(settings.seed() ^ 0x50504fL, u * settings.ppoEpochs() + epoch)).shuffle(order);
      for (int mb = 0; mb < settings.miniBatches(); mb++) {
        List<PpoSample> mini = new ArrayList<>(miniSize);
        long tokens = 0;
        for (int i = mb * miniSize; i < (mb + 1) * miniSize; i++) {
          PpoSample s = rollout.samples().get(order[i]);
          mini.add(s);
          tokens += s.response().length;
        }
        stats = add(stats, step(mini, tokens));
      }
    }
    updates++;
    episodes += n;
    Map<String, Double> metrics = new LinkedHashMap<>(rollout.metrics());
    metrics.putAll(objective.metrics(stats));
    metrics.put("lr", lastLearningRate);
    metrics.put("episode", (double) episodes);
    return new Update(rollout, metrics);
  }

  private double lastLearningRate;

  /** Forward and backward per micro-batch, then one optimizer step: the mini-batch's token mean. */
  private double[] step(List<PpoSample> mini, long tokens) {
    double[] stats = objective.emptyStats();
    List<String> ids = new ArrayList<>(mini.size());
    try (GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
      for (int from = 0; from < mini.size(); from += settings.microBatch()) {
        List<PpoSample> micro = mini.subList(from, Math.min(mini.size(), from + settings.microBatch()));
        try (NDManager scope = manager.newSubManager()) {
          Objective.Forward f = objective.forward(scope, micro);
          collector.backward(f.lossSum());
          accumulator.addMicroBatch(f.items());
          stats = add(stats, f.stats());
        }
        micro.forEach(s -> ids.add(s.id()));
      }
    }
    OptimizerStep.Result r = optimizerStep.apply(optimizerSteps, accumulator, tokens, ids);
    optimizerSteps++;
    lastLearningRate = r.learningRate();
    return stats;
  }

  private static double[] add(double[] a, double[] b) {
    double[] out = a.clone();
    for (int i = 0; i < out.length; i++) {
      out[i] += b[i];
    }
    return out;
  }

  /** Rollout batches done. */
  public long updates() {
    return updates;
  }

  public long optimizerSteps() {
    return optimizerSteps;
  }

  @Override
  public void close() {
    accumulator.close();
    adamw.close();
    objective.close();
    manager.close();
  }
}
