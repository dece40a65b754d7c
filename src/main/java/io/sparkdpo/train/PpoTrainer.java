package io.sparkdpo.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.config.LrSchedulerType;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.Generator;
import io.sparkdpo.model.ResponseTokens;
import io.sparkdpo.model.SamplingSettings;
import io.sparkdpo.model.ValueHead;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PPO against a frozen pi_SFT, one {@link #update} per rollout batch, TRL 0.22.2's loop, on one replica of a
 * {@link ReplicaGroup} (W = 1: {@link ReplicaGroup#SINGLE}):
 * <ol>
 *   <li>every replica gets the whole rollout batch of prompts and samples its own slice of rows (rank r: rows
 *       {@code [r n/W, (r+1) n/W)}) from the current policy at {@code temperature} (no top-k, no top-p), each row
 *       seeded from the run seed, the update and the row's place in the whole batch, so the tokens drawn do not
 *       depend on W;</li>
 *   <li>scores its responses ({@link BatchScorer}: a reward model, or a ground-truth reward as an oracle);</li>
 *   <li>without graph, in batches of {@code local_rollout_forward_batch_size}: the policy's log-probs and values and
 *       pi_SFT's log-probs of the sampled tokens, at the same temperature;</li>
 *   <li>all-gathers the slices, so every replica holds the whole batch in row order and computes the same
 *       {@link PpoRollout} (KL-penalised rewards, GAE, advantages whitened with the batch-wide moments) bit
 *       for bit;</li>
 *   <li>{@code ppo_epochs} passes over the batch, each in a fresh seeded order of the whole batch, split into
 *       {@code mini_batches}; rank r trains on its share of each mini-batch (positions {@code [r m/W, (r+1) m/W)}),
 *       forward and backward per micro-batch ({@link PpoObjective}), then one optimizer step ({@link OptimizerStep}:
 *       the gradient sums all-reduced and divided by the mini-batch's token count over all replicas, global-norm
 *       clipping, AdamW) over the policy's parameters and the value head. W replicas thus do the work of one.</li>
 * </ol>
 * The training statistics are summed over replicas, so every replica reports the batch's metrics. The learning rate
 * follows its schedule per optimizer step (TRL steps its scheduler once per rollout batch; with a constant rate the
 * two agree). Everything an update depends on besides the weights is the update count (seeds derive from it), the
 * optimizer's state and the schedule: {@link #checkpoint} and {@link #restore} carry them, so a resumed run
 * continues bit for bit.
 */
public final class PpoTrainer implements AutoCloseable {
  /** The value head's file in a checkpoint and next to a run's exported model (not part of the HF model). */
  public static final String VALUE_HEAD = "value_head.safetensors";
  /** TRL's names for the responses sampled so far and the learning rate of the update's last step. */
  public static final String EPISODE = "episode";
  public static final String LR = "lr";

  /** The reward of a response (its tokens without the stop token) to a prompt; deterministic. */
  @FunctionalInterface
  public interface Scorer {
    double score(int[] prompt, int[] response);
  }

  /** The rewards of a slice of the rollout, one per generation; deterministic and independent of the batching. */
  @FunctionalInterface
  public interface BatchScorer {
    double[] score(List<int[]> prompts, List<Generator.Generation> generations);

    static BatchScorer of(Scorer scorer) {
      return (prompts, generations) -> {
        double[] out = new double[prompts.size()];
        for (int i = 0; i < out.length; i++) {
          out[i] = scorer.score(prompts.get(i), generations.get(i).tokens());
        }
        return out;
      };
    }
  }

  /**
   * @param miniBatches mini-batches (optimizer steps) per epoch over a rollout batch ({@code num_mini_batches})
   * @param microBatch sequences per forward pass with graph ({@code per_device_train_batch_size})
   * @param responseLength most new tokens per response ({@code response_length})
   * @param rolloutBatch rows per generation and per no-grad forward ({@code local_rollout_forward_batch_size})
   */
  public record Settings(PpoHyper hyper, int ppoEpochs, int miniBatches, int microBatch, int responseLength,
      double learningRate, LrSchedulerType schedule, AdamW.Hyper adam, double maxGradNorm, long seed,
      int rolloutBatch) {
    public Settings {
      if (ppoEpochs < 1 || miniBatches < 1 || microBatch < 1 || responseLength < 1 || rolloutBatch < 1) {
        throw new IllegalArgumentException("num_ppo_epochs, num_mini_batches, micro-batch, response_length and "
            + "local_rollout_forward_batch_size must be >= 1, got " + ppoEpochs + ", " + miniBatches + ", "
            + microBatch + ", " + responseLength + ", " + rolloutBatch);
      }
    }

    /** Rollout passes in micro-batches. */
    public Settings(PpoHyper hyper, int ppoEpochs, int miniBatches, int microBatch, int responseLength,
        double learningRate, LrSchedulerType schedule, AdamW.Hyper adam, double maxGradNorm, long seed) {
      this(hyper, ppoEpochs, miniBatches, microBatch, responseLength, learningRate, schedule, adam, maxGradNorm, seed,
          microBatch);
    }
  }

  /** What one update did: its rollout (the whole batch) and the metrics (rollout, training means, lr, episode). */
  public record Update(PpoRollout rollout, Map<String, Double> metrics) {}

  /** The loop's state in a checkpoint ({@link TrainerCheckpoint#STATE}). */
  public record State(@JsonProperty("step") long updates, @JsonProperty("optimizer_steps") long optimizerSteps,
                      @JsonProperty("episodes") long episodes, @JsonProperty("schedule") LearningRateSchedule schedule,
                      @JsonProperty("seed") long seed) {}

  private final CausalLM policy;
  private final ValueHead valueHead;
  private final CausalLM reference;
  private final BatchScorer scorer;
  private final Settings settings;
  private final ReplicaGroup group;
  private final PpoObjective objective;
  private final AdamW adamw;
  private final GradientAccumulator accumulator;
  private final LearningRateSchedule schedule;
  private final OptimizerStep optimizerStep;
  private final NDManager manager;
  private long updates;
  private long optimizerSteps;
  private long episodes;
  private double lastLearningRate;

  /** One replica. */
  public PpoTrainer(CausalLM policy, ValueHead valueHead, CausalLM reference, Scorer scorer, Settings settings,
      long totalUpdates) {
    this(policy, valueHead, reference, BatchScorer.of(scorer), settings, totalUpdates, ReplicaGroup.SINGLE);
  }

  /**
   * @param policy trained in place (its {@link CausalLM#trainableParameters()})
   * @param valueHead trained with it
   * @param reference pi_SFT, frozen; read only
   * @param totalUpdates rollout batches the run will take (the schedule's length)
   * @param group this replica's group: gradients, the rollout and the statistics are shared through it
   */
  public PpoTrainer(CausalLM policy, ValueHead valueHead, CausalLM reference, BatchScorer scorer, Settings settings,
      long totalUpdates, ReplicaGroup group) {
    this.policy = policy;
    this.valueHead = valueHead;
    this.reference = reference;
    this.scorer = scorer;
    this.settings = settings;
    this.group = group;
    this.objective = new PpoObjective(policy, valueHead, settings.hyper());
    LinkedHashMap<String, NDArray> arrays = new LinkedHashMap<>();
    policy.trainableParameters().forEach((name, p) -> arrays.put(name, p.getArray()));
    valueHead.parameters().forEach((name, p) -> arrays.put(name, p.getArray()));
    this.adamw = new AdamW(arrays, settings.adam(), AdamW.decaysByDefault());
    this.accumulator = new GradientAccumulator(new ArrayList<>(arrays.values()));
    long steps = Math.max(1, totalUpdates * settings.ppoEpochs() * settings.miniBatches());
    this.schedule = new LearningRateSchedule(settings.schedule(), settings.learningRate(), 0, steps);
    this.optimizerStep = new OptimizerStep(adamw, schedule, settings.maxGradNorm(), group);
    this.manager = NDManager.newBaseManager(policy.device(), "PyTorch");
  }

  /**
   * One rollout batch of one response per prompt, then its PPO epochs. Every replica passes the same prompts (the
   * whole batch) and gets the same metrics.
   */
  public Update update(List<int[]> prompts) {
    int n = prompts.size();
    int w = group.worldSize();
    if (n == 0 || n % ((long) settings.miniBatches() * w) != 0) {
      throw new IllegalArgumentException(n + " prompts do not split into " + settings.miniBatches()
          + " equal mini-batches with an equal share for each of " + w + " replica(s) (TRL requires batch_size to be "
          + "a multiple of num_mini_batches too)");
    }
    long u = updates;
    PpoHyper h = settings.hyper();
    int from = group.rank() * n / w;
    int to = (group.rank() + 1) * n / w;
    Slice mine = sample(prompts, from, to, u, n);
    Slice all = Slice.concat(group.allGather(mine.toBytes()), n);
    List<String> ids = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      ids.add("update-" + u + "/row-" + i);
    }
    PpoRollout rollout = PpoRollout.of(ids, prompts, all.responses, all.logProbs, all.refLogProbs, all.values,
        all.scores, h);

    double[] stats = objective.emptyStats();
    int miniSize = n / settings.miniBatches();
    int share = miniSize / w;
    for (int epoch = 0; epoch < settings.ppoEpochs(); epoch++) {
      int[] order = new int[n];
      for (int i = 0; i < n; i++) {
        order[i] = i;
      }
      new SeededRng(SeededRng.derive(settings.seed() ^ 0x50504fL, u * settings.ppoEpochs() + epoch)).shuffle(order);
      for (int mb = 0; mb < settings.miniBatches(); mb++) {
        List<PpoSample> part = new ArrayList<>(share);
        long tokens = 0;
        for (int k = 0; k < miniSize; k++) {
          PpoSample s = rollout.samples().get(order[mb * miniSize + k]);
          tokens += s.response().length;
          if (k / share == group.rank()) {
            part.add(s);
          }
        }
        stats = add(stats, step(part, tokens));
      }
    }
    group.allReduceSum(stats);
    updates++;
    episodes += n;
    Map<String, Double> metrics = new LinkedHashMap<>(rollout.metrics());
    metrics.putAll(objective.metrics(stats));
    metrics.put(LR, lastLearningRate);
    metrics.put(EPISODE, (double) episodes);
    return new Update(rollout, metrics);
  }

  /** Rows {@code [from, to)} of the batch: sampled, scored, and their log-probs and values without graph. */
  private Slice sample(List<int[]> prompts, int from, int to, long update, int n) {
    PpoHyper h = settings.hyper();
    int rows = to - from;
    Slice out = new Slice(rows);
    ResponseTokens policyTokens = new ResponseTokens(policy);
    ResponseTokens referenceTokens = new ResponseTokens(reference);
    SamplingSettings sampling = new SamplingSettings(h.temperature(), 0, 1.0, settings.responseLength(), 0);
    for (int a = from; a < to; a += settings.rolloutBatch()) {
      int b = Math.min(to, a + settings.rolloutBatch());
      List<int[]> p = prompts.subList(a, b);
      long[] seeds = new long[b - a];
      for (int i = a; i < b; i++) {
        seeds[i - a] = SeededRng.derive(settings.seed(), update * n + i);
      }
      List<Generator.Generation> generations = new Generator(policy).generate(p, sampling, seeds);
      List<int[]> r = generations.stream().map(Generator.Generation::sampledTokens).toList();
      double[] scores = scorer.score(p, generations);
      try (NDManager scope = manager.newSubManager()) {
        ResponseTokens.Result pi = policyTokens.compute(scope, p, r, h.temperature(), valueHead, false);
        ResponseTokens.Result ref = referenceTokens.compute(scope, p, r, h.temperature(), null, false);
        double[][] lp = pi.rows(pi.logProbs());
        double[][] v = pi.rows(pi.values());
        double[][] rl = ref.rows(ref.logProbs());
        for (int i = a; i < b; i++) {
          int k = i - from;
          out.responses.add(r.get(i - a));
          out.logProbs[k] = lp[i - a];
          out.values[k] = v[i - a];
          out.refLogProbs[k] = rl[i - a];
          out.scores[k] = scores[i - a];
        }
      }
    }
    return out;
  }

  /**
   * Forward and backward per micro-batch of this replica's share, then one optimizer step over all replicas: the
   * mini-batch's token mean ({@code tokens} counts the whole mini-batch).
   */
  private double[] step(List<PpoSample> share, long tokens) {
    double[] stats = objective.emptyStats();
    List<String> ids = new ArrayList<>(share.size());
    try (GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
      for (int from = 0; from < share.size(); from += settings.microBatch()) {
        List<PpoSample> micro = share.subList(from, Math.min(share.size(), from + settings.microBatch()));
        try (NDManager scope = manager.newSubManager()) {
          Objective.Forward f = objective.forward(scope, micro);
          NonFiniteException.requireFinite(updates + 1, "loss", f.lossValue(),
              micro.stream().map(PpoSample::id).toList());
          collector.backward(f.lossSum());
          accumulator.addMicroBatch(f.items());
          stats = add(stats, f.stats());
        }
        micro.forEach(s -> ids.add(s.id()));
      }
    } catch (RuntimeException | Error e) {
      accumulator.zero();
      throw e;
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

  /** The policy's trained arrays, then the value head's (for replica checksums). */
  public List<NDArray> parameterArrays() {
    List<NDArray> out = new ArrayList<>();
    policy.trainableParameters().values().forEach(p -> out.add(p.getArray()));
    valueHead.parameters().values().forEach(p -> out.add(p.getArray()));
    return out;
  }

  /**
   * The files of a checkpoint after the current update, {@link TrainerCheckpoint}'s layout: the policy in Hugging
   * Face layout (float32, staged in {@code scratch}, which the caller deletes later), {@link #VALUE_HEAD}, AdamW's
   * state and {@link State}.
   */
  public Map<String, PayloadWriter> checkpoint(Path scratch) {
    try {
      Path model = scratch.resolve("model");
      policy.save(model.toString(), Storage.local(), DataType.FLOAT32);
      Path head = scratch.resolve(VALUE_HEAD);
      valueHead.save(head.toString(), Storage.local());
      Map<String, PayloadWriter> files = new LinkedHashMap<>(PayloadWriter.localFolder(model, ""));
      for (String name : files.keySet()) {
        if (TrainerCheckpoint.LOOP_FILES.contains(name)) {
          throw new IllegalArgumentException("the policy's folder holds " + name + ", a name the checkpoint keeps "
              + "for the trainer's own state");
        }
      }
      files.put(VALUE_HEAD, PayloadWriter.localFile(head));
      files.put(TrainerCheckpoint.OPTIMIZER, adamw.exportState()::write);
      files.put(TrainerCheckpoint.STATE, PayloadWriter.json(state()));
      return files;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot stage PPO checkpoint " + updates + ": " + e.getMessage(), e);
    }
  }

  public State state() {
    return new State(updates, optimizerSteps, episodes, schedule, settings.seed());
  }

  /**
   * Takes back the loop state and the optimizer of {@code checkpoint}; the policy and the value head must already be
   * the checkpoint's (loaded from {@link TrainerCheckpoint#modelFolder} and {@link #VALUE_HEAD}).
   */
  public void restore(Checkpoint checkpoint) {
    if (updates != 0) {
      throw new IllegalStateException("restore a fresh trainer, not one after " + updates + " updates");
    }
    State s = checkpoint.readJson(TrainerCheckpoint.STATE, State.class);
    if (s.updates() != checkpoint.step()) {
      throw new CheckpointException("checkpoint " + checkpoint.dir() + " holds the PPO state of update "
          + s.updates());
    }
    if (!s.schedule().equals(schedule) || s.seed() != settings.seed()) {
      throw new IllegalArgumentException("checkpoint " + checkpoint.dir() + " was written with the schedule "
          + s.schedule() + " and seed " + s.seed() + ", this run has " + schedule + " and " + settings.seed()
          + ": resume with the same settings or start a new output folder");
    }
    TrainerCheckpoint.restoreOptimizer(checkpoint, adamw, s.optimizerSteps());
    updates = s.updates();
    optimizerSteps = s.optimizerSteps();
    episodes = s.episodes();
  }

  @Override
  public void close() {
    accumulator.close();
    adamw.close();
    objective.close();
    manager.close();
  }

  /** Rows of the rollout: this replica's, or every replica's concatenated in rank order. */
  private static final class Slice {
    final List<int[]> responses = new ArrayList<>();
    final double[][] logProbs;
    final double[][] refLogProbs;
    final double[][] values;
    final double[] scores;

    Slice(int rows) {
      logProbs = new double[rows][];
      refLogProbs = new double[rows][];
      values = new double[rows][];
      scores = new double[rows];
    }

    /** Exact bits: int row count, then per row its length, tokens, three double rows and the score. */
    byte[] toBytes() {
      int size = Integer.BYTES;
      for (int[] r : responses) {
        size += Integer.BYTES + r.length * (Integer.BYTES + 3 * Double.BYTES) + Double.BYTES;
      }
      ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
      b.putInt(responses.size());
      for (int i = 0; i < responses.size(); i++) {
        int[] r = responses.get(i);
        b.putInt(r.length);
        for (int t : r) {
          b.putInt(t);
        }
        for (double[] row : new double[][] {logProbs[i], refLogProbs[i], values[i]}) {
          for (double x : row) {
            b.putDouble(x);
          }
        }
        b.putDouble(scores[i]);
      }
      return b.array();
    }

    static Slice concat(byte[][] parts, int expectedRows) {
      Slice out = new Slice(expectedRows);
      int k = 0;
      for (byte[] part : parts) {
        ByteBuffer b = ByteBuffer.wrap(part).order(ByteOrder.LITTLE_ENDIAN);
        int rows = b.getInt();
        for (int i = 0; i < rows; i++, k++) {
          if (k >= expectedRows) {
            throw new IllegalStateException("the replicas' rollout slices hold more than " + expectedRows + " rows");
          }
          int[] r = new int[b.getInt()];
          for (int t = 0; t < r.length; t++) {
            r[t] = b.getInt();
          }
          out.responses.add(r);
          for (double[][] into : new double[][][] {out.logProbs, out.refLogProbs, out.values}) {
            into[k] = new double[r.length];
            for (int t = 0; t < r.length; t++) {
              into[k][t] = b.getDouble();
            }
          }
          out.scores[k] = b.getDouble();
        }
      }
      if (k != expectedRows) {
        throw new IllegalStateException("the replicas' rollout slices hold " + k + " rows, the batch " + expectedRows);
      }
      return out;
    }
  }
}
