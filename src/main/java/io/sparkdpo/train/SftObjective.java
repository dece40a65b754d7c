package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.NoGrad;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The causal-LM objective of supervised fine-tuning ({@link SftLoss}) over {@link LmExample}s, response tokens
 * only or the whole sequence. Statistics: {@code [target tokens, summed NLL, correctly predicted tokens]}, reported
 * as TRL's SFT trainer does: {@code loss} (mean per token) and {@code mean_token_accuracy}.
 */
public final class SftObjective implements Objective<LmExample> {
  public static final String MEAN_TOKEN_ACCURACY = "mean_token_accuracy";
  private final CausalLM model;
  private final boolean completionOnly;
  private final int padId;

  public SftObjective(CausalLM model, boolean completionOnly) {
    this.model = model;
    this.completionOnly = completionOnly;
    // Padding sits after the real tokens and is never a target, so any id in the vocabulary serves.
    int pad = model.config().padTokenId();
    List<Integer> eos = model.config().eosTokenIds();
    this.padId = pad >= 0 ? pad : eos.isEmpty() ? 0 : Math.max(0, eos.get(0));
  }

  @Override
  public String id(LmExample example) {
    return example.id();
  }

  @Override
  public int tokens(LmExample example) {
    return example.length();
  }

  @Override
  public Forward forward(NDManager scope, List<LmExample> batch) {
    return run(scope, batch, true);
  }

  @Override
  public double[] evaluate(NDManager scope, List<LmExample> batch) {
    try (NoGrad ignored = NoGrad.enter()) {
      return run(scope, batch, false).stats();
    }
  }

  private Forward run(NDManager scope, List<LmExample> batch, boolean training) {
    List<int[]> prompts = new ArrayList<>(batch.size());
    List<int[]> responses = new ArrayList<>(batch.size());
    for (LmExample e : batch) {
      prompts.add(e.prompt());
      responses.add(e.response());
    }
    NDList arrays = SftBatch.of(prompts, responses, padId, completionOnly).toArrays(scope);
    NDArray logits = model.logits(arrays.get(0), training);
    SftOutput out = SftLoss.compute(logits, arrays.get(1), arrays.get(2));
    double lossSum = out.lossSum().getFloat();
    double correct;
    try (NoGrad ignored = NoGrad.enter();
         NDArray predicted = logits.argMax(-1);
         NDArray hit = predicted.eq(arrays.get(1));
         NDArray hits = hit.toType(DataType.FLOAT32, false);
         NDArray counted = hits.mul(arrays.get(2));
         NDArray total = counted.sum()) {
      correct = total.getFloat();
    }
    return new Forward(out.lossSum(), lossSum, new double[] {out.tokens(), lossSum, correct}, out.tokens());
  }

  @Override
  public double[] emptyStats() {
    return new double[3];
  }

  @Override
  public long items(double[] stats) {
    return Math.round(stats[0]);
  }

  @Override
  public Map<String, Double> metrics(double[] stats) {
    double tokens = stats[0];
    Map<String, Double> m = new LinkedHashMap<>();
    m.put(MetricNames.LOSS, tokens > 0 ? stats[1] / tokens : 0.0);
    m.put(MEAN_TOKEN_ACCURACY, tokens > 0 ? stats[2] / tokens : 0.0);
    return m;
  }

  @Override
  public void close() {
    // the policy belongs to the session
  }
}
