package io.sparkdpo.train;

import ai.djl.ndarray.NDManager;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ResponseTokens;
import io.sparkdpo.model.ValueHead;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * PPO's objective over a rollout's samples: one policy forward of prompt + response with graph gives each response
 * token's log pi (at the sampling temperature) and, from the same hidden states, the value head's V; then
 * {@link PpoLoss}. Items are response tokens, so a mini-batch's gradient is the token mean over all its
 * micro-batches and replicas. Statistics are {@link PpoLoss.Stats} arrays. The policy and the head belong to the
 * caller.
 */
public final class PpoObjective implements Objective<PpoSample> {
  private final ResponseTokens tokens;
  private final ValueHead valueHead;
  private final PpoLoss loss;
  private final double temperature;

  public PpoObjective(CausalLM policy, ValueHead valueHead, PpoHyper hyper) {
    this.tokens = new ResponseTokens(policy);
    this.valueHead = valueHead;
    this.loss = PpoLoss.of(hyper);
    this.temperature = hyper.temperature();
  }

  @Override
  public String id(PpoSample sample) {
    return sample.id();
  }

  @Override
  public int tokens(PpoSample sample) {
    return sample.prompt().length + sample.response().length;
  }

  @Override
  public Forward forward(NDManager scope, List<PpoSample> batch) {
    PpoLoss.Output out = compute(scope, batch, true);
    return new Forward(out.lossSum(), out.stats().loss(), out.stats().toArray(), out.stats().tokens());
  }

  @Override
  public double[] evaluate(NDManager scope, List<PpoSample> batch) {
    return compute(scope, batch, false).stats().toArray();
  }

  private PpoLoss.Output compute(NDManager scope, List<PpoSample> batch, boolean training) {
    List<int[]> prompts = new ArrayList<>(batch.size());
    List<int[]> responses = new ArrayList<>(batch.size());
    int r = 0;
    for (PpoSample s : batch) {
      prompts.add(s.prompt());
      responses.add(s.response());
      r += s.response().length;
    }
    float[] oldLogProbs = new float[r];
    float[] oldValues = new float[r];
    float[] advantages = new float[r];
    float[] returns = new float[r];
    int k = 0;
    for (PpoSample s : batch) {
      for (int t = 0; t < s.response().length; t++, k++) {
        oldLogProbs[k] = (float) s.oldLogProbs()[t];
        oldValues[k] = (float) s.oldValues()[t];
        advantages[k] = (float) s.advantages()[t];
        returns[k] = (float) s.returns()[t];
      }
    }
    ResponseTokens.Result out = tokens.compute(scope, prompts, responses, temperature, valueHead, training);
    return loss.compute(out.logProbs(), out.values(), out.entropy(), oldLogProbs, oldValues, advantages, returns);
  }

  @Override
  public double[] emptyStats() {
    return PpoLoss.Stats.EMPTY.toArray();
  }

  @Override
  public long items(double[] stats) {
    return PpoLoss.Stats.fromArray(stats).tokens();
  }

  @Override
  public Map<String, Double> metrics(double[] stats) {
    return PpoLoss.Stats.fromArray(stats).toMetrics();
  }

  @Override
  public void close() {
    // the policy and the value head belong to the caller
  }
}
