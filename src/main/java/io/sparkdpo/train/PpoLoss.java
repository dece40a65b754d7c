package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.model.ScalarOps;

/**
 * PPO's loss over response tokens, TRL 0.22.2's ({@code PPOTrainer.train}): with the ratio
 * {@code rho = exp(log pi - log pi_old)}, advantage {@code A}, value prediction {@code v}, the sampling-time value
 * {@code v_old} and return {@code R},
 * <pre>
 *   policy:  max(-A rho, -A clip(rho, 1 - cliprange, 1 + cliprange))                  the clipped surrogate
 *   value:   1/2 max((v - R)^2, (clip(v, v_old - cliprange_value, v_old + cliprange_value) - R)^2)
 *   loss:    policy + vf_coef * value
 * </pre>
 * averaged over tokens. Here the micro-batch returns the token <em>sums</em> (the trainer divides by the
 * mini-batch's token count once, so micro-batches and replicas add up exactly); TRL takes the mean per micro-batch.
 * Clips are clamps between libtorch-owned bounds ({@link ScalarOps}' reason: backward reads them again; DJL's
 * {@code clip(Number, Number)} would hand it freed Java memory). Statistics are detached sums, see {@link Stats}.
 */
public final class PpoLoss {
  private final double clipRange;
  private final double clipRangeValue;
  private final double vfCoef;

  public PpoLoss(double clipRange, double clipRangeValue, double vfCoef) {
    this.clipRange = clipRange;
    this.clipRangeValue = clipRangeValue;
    this.vfCoef = vfCoef;
  }

  public static PpoLoss of(PpoHyper h) {
    return new PpoLoss(h.clipRange(), h.clipRangeValue(), h.vfCoef());
  }

  /**
   * Detached token sums of one micro-batch; add them up, then {@link #toMetrics}.
   *
   * @param clippedPolicy tokens whose clipped policy term was the larger ({@code pg_losses2 > pg_losses})
   * @param clippedValue tokens whose clipped value term was the larger
   * @param approxKl sum of {@code (log pi - log pi_old)^2 / 2}
   */
  public record Stats(long tokens, double loss, double policyLoss, double valueLoss, double clippedPolicy,
      double clippedValue, double approxKl, double ratio, double entropy) {
    public static final Stats EMPTY = new Stats(0, 0, 0, 0, 0, 0, 0, 0, 0);
    public static final String LOSS = "loss";
    public static final String POLICY_LOSS = "loss/policy_avg";
    public static final String VALUE_LOSS = "loss/value_avg";
    public static final String POLICY_CLIPFRAC = "policy/clipfrac_avg";
    public static final String VALUE_CLIPFRAC = "val/clipfrac_avg";
    public static final String APPROX_KL = "policy/approxkl_avg";
    public static final String RATIO = "val/ratio";
    public static final String ENTROPY = "policy/entropy_avg";

    public Stats plus(Stats o) {
      return new Stats(tokens + o.tokens, loss + o.loss, policyLoss + o.policyLoss, valueLoss + o.valueLoss,
          clippedPolicy + o.clippedPolicy, clippedValue + o.clippedValue, approxKl + o.approxKl, ratio + o.ratio,
          entropy + o.entropy);
    }

    public double[] toArray() {
      return new double[] {tokens, loss, policyLoss, valueLoss, clippedPolicy, clippedValue, approxKl, ratio,
          entropy};
    }

    public static Stats fromArray(double[] a) {
      return new Stats(Math.round(a[0]), a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
    }

    /** Per-token means under TRL's names (token-weighted; TRL averages per-micro-batch means). */
    public java.util.Map<String, Double> toMetrics() {
      java.util.Map<String, Double> m = new java.util.LinkedHashMap<>();
      double n = Math.max(1, tokens);
      m.put(LOSS, loss / n);
      m.put(POLICY_LOSS, policyLoss / n);
      m.put(VALUE_LOSS, valueLoss / n);
      m.put(POLICY_CLIPFRAC, clippedPolicy / n);
      m.put(VALUE_CLIPFRAC, clippedValue / n);
      m.put(APPROX_KL, approxKl / n);
      m.put(RATIO, tokens == 0 ? 0 : ratio / n);
      m.put(ENTROPY, entropy / n);
      return m;
    }
  }

  /** The summed loss with its graph, and the detached statistics. */
  public record Output(NDArray lossSum, Stats stats) {}

  /**
   * @param logProbs [R] log pi of the response tokens, with gradient
   * @param values [R] the value head's predictions, with gradient
   * @param entropy [R] per-token entropy (a metric; null for none)
   * @param oldLogProbs, oldValues, advantages, returns [R] constants from the rollout
   */
  public Output compute(NDArray logProbs, NDArray values, NDArray entropy, float[] oldLogProbs, float[] oldValues,
      float[] advantages, float[] returns) {
    int r = Math.toIntExact(logProbs.getShape().size());
    if (values.getShape().size() != r || oldLogProbs.length != r || oldValues.length != r || advantages.length != r
        || returns.length != r) {
      throw new IllegalArgumentException("PPO loss over " + r + " tokens got " + values.getShape().size()
          + " values, " + oldLogProbs.length + " old log-probs, " + oldValues.length + " old values, "
          + advantages.length + " advantages and " + returns.length + " returns");
    }
    NDManager m = logProbs.getManager();
    NDArray oldLogp = owned(m, oldLogProbs);
    NDArray negAdv = owned(m, advantages).neg();
    NDArray oldV = owned(m, oldValues);
    NDArray ret = owned(m, returns);

    NDArray diff = logProbs.sub(oldLogp);
    NDArray ratio = diff.exp();
    NDArray pg1 = ratio.mul(negAdv);
    NDArray pg2 = clamp(ratio, scalar(m, 1 - clipRange), scalar(m, 1 + clipRange)).mul(negAdv);
    NDArray policy = pg1.maximum(pg2).sum();

    // The bounds are computed from constants (no graph), into libtorch-owned results.
    NDArray vClipped = clamp(values, oldV.sub(clipRangeValue), oldV.add(clipRangeValue));
    NDArray vf1 = values.sub(ret).square();
    NDArray vf2 = vClipped.sub(ret).square();
    NDArray value = ScalarOps.mul(vf1.maximum(vf2).sum(), 0.5);
    NDArray lossSum = policy.add(ScalarOps.mul(value, vfCoef));

    float[] p1 = pg1.toFloatArray();
    float[] p2 = pg2.toFloatArray();
    float[] v1 = vf1.toFloatArray();
    float[] v2 = vf2.toFloatArray();
    float[] d = diff.toFloatArray();
    float[] rho = ratio.toFloatArray();
    double clippedPolicy = 0;
    double clippedValue = 0;
    double approxKl = 0;
    double ratioSum = 0;
    for (int i = 0; i < r; i++) {
      clippedPolicy += p2[i] > p1[i] ? 1 : 0;
      clippedValue += v2[i] > v1[i] ? 1 : 0;
      approxKl += 0.5 * d[i] * d[i];
      ratioSum += rho[i];
    }
    double entropySum = 0;
    if (entropy != null) {
      for (float e : entropy.toFloatArray()) {
        entropySum += e;
      }
    }
    Stats stats = new Stats(r, lossSum.getFloat(), policy.getFloat(), value.getFloat(), clippedPolicy,
        clippedValue, approxKl, ratioSum, entropySum);
    return new Output(lossSum, stats);
  }

  /** torch.clamp(x, lo, hi) with tensor bounds: min(max(x, lo), hi); the gradient passes where x is inside. */
  private static NDArray clamp(NDArray x, NDArray lo, NDArray hi) {
    return x.maximum(lo).minimum(hi);
  }

  private static NDArray scalar(NDManager m, double value) {
    return m.full(new Shape(), (float) value, DataType.FLOAT32);
  }

  /** A libtorch-owned copy of Java data: backward of mul/maximum reads these again after the forward. */
  private static NDArray owned(NDManager m, float[] values) {
    try (NDArray staged = m.create(values)) {
      return staged.duplicate();
    }
  }
}
