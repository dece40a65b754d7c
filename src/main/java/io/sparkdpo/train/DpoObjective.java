package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.ReferenceColumns;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.SequenceLogProbs;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The DPO objective over preference pairs: one policy forward of chosen and rejected together (with graph), the
 * reference log-probs run without graph ({@code in_loop}: a frozen model, or with LoRA the policy itself with its
 * adapters switched to the reference set) or from the pairs' columns ({@code precomputed}), then {@link DpoLoss}.
 * Statistics are {@link DpoStats} arrays. The reference runs for every loss type, reference_free included: TRL
 * 0.22.2 computes its log-probs whatever the loss and reports the rewards {@code beta (log pi - log ref)}.
 */
public final class DpoObjective implements Objective<PreparedPair> {
  private final SequenceLogProbs policy;
  private final CausalLM reference;
  private final SequenceLogProbs referenceLogProbs;
  /** LoRA: the policy model, whose {@link CausalLM.AdapterMode#REFERENCE} passes are the reference; else null. */
  private final CausalLM adapterPolicy;
  private final DpoLoss loss;

  /**
   * @param reference the frozen reference model, owned (closed) by this objective; null when the pairs carry
   *     precomputed reference log-probs
   */
  public DpoObjective(CausalLM policy, CausalLM reference, DpoLoss loss) {
    this(policy, reference, null, loss);
  }

  private DpoObjective(CausalLM policy, CausalLM reference, CausalLM adapterPolicy, DpoLoss loss) {
    this.policy = new SequenceLogProbs(policy);
    this.reference = reference;
    this.referenceLogProbs = reference != null ? new SequenceLogProbs(reference)
        : adapterPolicy != null ? this.policy : null;
    this.adapterPolicy = adapterPolicy;
    this.loss = loss;
  }

  /**
   * DPO with LoRA and an in-loop reference: the reference is the policy with its trained adapter switched off (the
   * base, or base + the frozen reference adapter of {@code model.adapter}), as TRL does with PEFT; no second model.
   * While the trained adapter's B is zero (a fresh {@code addLora}) or equals the reference adapter, policy and
   * reference compute the same numbers.
   */
  public static DpoObjective withAdapterReference(CausalLM policy, DpoLoss loss) {
    if (!policy.hasAdapters()) {
      throw new IllegalArgumentException("an adapter reference needs a policy with LoRA adapters");
    }
    return new DpoObjective(policy, null, policy, loss);
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
    Result r = compute(scope, batch, true);
    return new Forward(r.out().losses().sum(), r.stats().lossSum(), r.stats().toArray(), batch.size());
  }

  @Override
  public double[] evaluate(NDManager scope, List<PreparedPair> batch) {
    return compute(scope, batch, false).stats().toArray();
  }

  /** The loss's output and the micro-batch's statistics, mean logits included. */
  private record Result(DpoOutput out, DpoStats stats) {}

  private Result compute(NDManager scope, List<PreparedPair> batch, boolean training) {
    List<int[]> prompts = new ArrayList<>(batch.size());
    List<int[]> chosen = new ArrayList<>(batch.size());
    List<int[]> rejected = new ArrayList<>(batch.size());
    for (PreparedPair p : batch) {
      prompts.add(p.promptIds());
      chosen.add(p.chosenIds());
      rejected.add(p.rejectedIds());
    }
    SequenceLogProbs.Pairs pi = policy.computePairs(scope, prompts, chosen, rejected, training, true);
    NDArray refChosen;
    NDArray refRejected;
    if (referenceLogProbs != null) {
      SequenceLogProbs.Pairs ref;
      if (adapterPolicy != null) {
        try (CausalLM.AdapterScope ignored = adapterPolicy.adapters(CausalLM.AdapterMode.REFERENCE)) {
          ref = referenceLogProbs.computePairs(scope, prompts, chosen, rejected, false);
        }
      } else {
        ref = referenceLogProbs.computePairs(scope, prompts, chosen, rejected, false);
      }
      refChosen = pick(ref.chosen());
      refRejected = pick(ref.rejected());
    } else {
      refChosen = scope.create(precomputed(batch, true));
      refRejected = scope.create(precomputed(batch, false));
    }
    // The NLL term (rpo_alpha) needs the chosen sums and scored token counts whatever pick() feeds the loss.
    NDArray chosenTokens = loss.rpoAlpha() == null ? null : pi.chosen().count().toType(DataType.FLOAT32, false);
    DpoOutput out = loss.compute(pick(pi.chosen()), pick(pi.rejected()), refChosen, refRejected, pi.chosen().sum(),
        chosenTokens, training);
    return new Result(out, out.stats().withMeanLogits(meanLogit(pi.chosen(), prompts, chosen),
        meanLogit(pi.rejected(), prompts, rejected)));
  }

  /**
   * TRL's {@code mean_chosen_logits}: the logits averaged over the vocabulary and over every position of the
   * micro-batch that predicts a response token (a token-weighted mean over the batch, not a mean of per-pair means).
   */
  private static double meanLogit(SequenceLogProbs.Batch b, List<int[]> prompts, List<int[]> responses) {
    float[] sums = b.logitSum().toFloatArray();
    double sum = 0;
    long positions = 0;
    for (int i = 0; i < sums.length; i++) {
      sum += sums[i];
      positions += SequenceLogProbs.predicted(prompts.get(i).length, responses.get(i).length);
    }
    return positions == 0 ? 0 : sum / positions;
  }

  /** Summed log-probs, or per-token means for the losses that use them (ipo). */
  private NDArray pick(SequenceLogProbs.Batch b) {
    return loss.usesMeanLogProbs() ? b.mean() : b.sum();
  }

  /** The reference stage stores sums; ipo takes the mean over the response's tokens. */
  private float[] precomputed(List<PreparedPair> batch, boolean chosen) {
    float[] out = new float[batch.size()];
    for (int i = 0; i < out.length; i++) {
      PreparedPair p = batch.get(i);
      Double sum = chosen ? p.refChosenLogp() : p.refRejectedLogp();
      if (sum == null) {
        throw new IllegalStateException("pair " + p.pairId() + " has no " + (chosen ? ReferenceColumns.CHOSEN_LOGPS
            : ReferenceColumns.REJECTED_LOGPS) + " (train.reference_mode is precomputed)");
      }
      int tokens = (chosen ? p.chosenIds() : p.rejectedIds()).length;
      out[i] = (float) (loss.usesMeanLogProbs() ? sum / tokens : sum);
    }
    return out;
  }

  @Override
  public double[] emptyStats() {
    return DpoStats.EMPTY.toArray();
  }

  @Override
  public long items(double[] stats) {
    return DpoStats.fromArray(stats).pairs();
  }

  @Override
  public Map<String, Double> metrics(double[] stats) {
    DpoStats s = DpoStats.fromArray(stats);
    Map<String, Double> m = new LinkedHashMap<>();
    if (s.pairs() > 0) {
      m.putAll(s.toMetrics(""));
    } else {
      new DpoStats(1, 0, 0, 0, 0, 0, 0, 0, 0, 0).toMetrics("").keySet().forEach(k -> m.put(k, 0.0));
    }
    if (loss.rpoAlpha() != null) {
      m.put(MetricNames.NLL_LOSS, s.pairs() > 0 ? s.nllLoss() : 0.0);
    }
    return m;
  }

  /** bco_pair's running mean reward, the one piece of loss state a resume needs (TRL's BCO keeps it likewise). */
  static final String BCO_RUNNING_MEAN = "bco_running_mean.json";

  @Override
  public Map<String, PayloadWriter> checkpointFiles() {
    RunningMean running = loss.bcoRewards();
    return running == null ? Map.of() : Map.of(BCO_RUNNING_MEAN, PayloadWriter.json(running.state()));
  }

  @Override
  public void restore(Checkpoint checkpoint) {
    RunningMean running = loss.bcoRewards();
    if (running == null) {
      return;
    }
    if (!checkpoint.files().contains(BCO_RUNNING_MEAN)) {
      throw new IllegalArgumentException("checkpoint " + checkpoint.dir() + " has no " + BCO_RUNNING_MEAN
          + ": it was written without loss_type bco_pair, whose running reward mean cannot be recovered; resume "
          + "with the loss_type the run started with or start a new output folder");
    }
    running.restore(checkpoint.readJson(BCO_RUNNING_MEAN, RunningMean.State.class));
  }

  @Override
  public void close() {
    if (reference != null) {
      reference.close();
    }
  }
}
