package io.sparkdpo.train;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.TrainSettings;
import io.sparkdpo.config.TrainSettings.LossType;
import io.sparkdpo.model.ScalarOps;
import java.util.ArrayList;
import java.util.List;

/**
 * The DPO loss family with TRL's names and formulas ({@code DPOTrainer.dpo_loss}, TRL 0.22.2). With the chosen and
 * rejected log-ratios {@code c = log pi(y_w) - log ref(y_w)}, {@code r = log pi(y_l) - log ref(y_l)}, their
 * difference {@code h = c - r}, label smoothing {@code e} and {@code s} the logistic function:
 * <ul>
 *   <li>sigmoid: {@code -(1-e) log s(beta h) - e log s(-beta h)} (the paper's loss; cDPO when e > 0)</li>
 *   <li>robust: {@code (-(1-e) log s(beta h) + e log s(-beta h)) / (1 - 2e)}</li>
 *   <li>ipo: {@code (h - 1/(2 beta))^2}, on per-token mean log-probs (TRL averages over the response)</li>
 *   <li>hinge: {@code relu(1 - beta h)}</li>
 *   <li>reference_free: sigmoid with the reference log-ratio taken as 0</li>
 *   <li>exo_pair: {@code s(z)(log s(z) - log(1-e)) + s(-z)(log s(-z) - log e)}, {@code z = beta h}, e = 1e-3 when
 *       label_smoothing is 0 (TRL's substitute)</li>
 *   <li>nca_pair: {@code -log s(beta c) - log s(-beta c)/2 - log s(-beta r)/2}</li>
 *   <li>bco_pair: {@code -log s(beta c - d) - log s(-(beta r - d))}, d the running mean of the micro-batches' mean
 *       reward, this batch's included ({@link RunningMean})</li>
 *   <li>sppo_hard: {@code (c - 1/(2 beta))^2 + (r + 1/(2 beta))^2}</li>
 *   <li>aot: sigmoid (with e) on {@code sort(log pi(y_w) - log pi(y_l)) - sort(log ref(y_w) - log ref(y_l))}, each
 *       sorted over the micro-batch; aot_pair likewise on {@code sort(c) - sort(r)}</li>
 *   <li>apo_zero: {@code 1 - s(beta c) + s(beta r)}; apo_down: {@code s(beta c) + 1 - s(beta h)}</li>
 *   <li>discopop: {@code (1 - m) softplus(-z) + m exp(-z)} with {@code z = beta h}, {@code m = s(z / tau)}</li>
 * </ul>
 * Several types add up with their weights ({@code loss_type} a list, {@code loss_weights}, 1 each by default), and so
 * do their rewards, as in TRL. With {@code rpo_alpha} the loss gains {@code alpha * NLL}, the chosen responses'
 * negative log-likelihood per token over the micro-batch ({@code -sum log pi(y_w) / chosen tokens}, TRL's
 * {@code nll_loss}). The loss is the mean over pairs; rewards {@code beta (log pi - log ref)} per sequence are
 * detached, as in TRL.
 *
 * <p>Inputs are [B] arrays; the policy ones carry the autograd graph from the model, so {@code d loss / d theta}
 * flows through them unchanged. Constants enter through {@link ScalarOps}, which autograd can read again in backward.
 * Every result is attached to the manager of {@code policyChosen}: call it inside the step's sub-manager.
 */
public final class DpoLoss {
  /** TRL's default {@code discopop_tau}. */
  public static final double DISCOPOP_TAU = 0.05;
  /** TRL's stand-in for exo_pair's epsilon when label_smoothing is 0. */
  private static final double EXO_EPSILON = 1e-3;

  private final List<LossType> types;
  private final double[] weights;
  private final double beta;
  private final double labelSmoothing;
  private final Double rpoAlpha;
  private final double discopopTau;
  /** bco_pair's running mean reward; null for the other types. Mutable state of a training run. */
  private final RunningMean bcoRewards;

  public DpoLoss(LossType type, double beta, double labelSmoothing) {
    this(List.of(type), null, beta, labelSmoothing, null, DISCOPOP_TAU);
  }

  /**
   * @param weights one per type, or null for 1 each
   * @param rpoAlpha the NLL term's weight, or null for none
   */
  public DpoLoss(List<LossType> types, List<Double> weights, double beta, double labelSmoothing, Double rpoAlpha,
      double discopopTau) {
    if (types == null || types.isEmpty() || types.stream().anyMatch(t -> t == null)) {
      throw new IllegalArgumentException("loss_type must name at least one loss, got " + types);
    }
    if (weights != null && weights.size() != types.size()) {
      throw new IllegalArgumentException("loss_weights has " + weights.size() + " values for " + types.size()
          + " loss types");
    }
    if (!(beta > 0) || !Double.isFinite(beta)) {
      throw new IllegalArgumentException("beta must be a finite number > 0, got " + beta);
    }
    if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) {
      throw new IllegalArgumentException("label_smoothing must be in [0, 0.5), got " + labelSmoothing);
    }
    if (rpoAlpha != null && !Double.isFinite(rpoAlpha)) {
      throw new IllegalArgumentException("rpo_alpha must be a finite number, got " + rpoAlpha);
    }
    if (!(discopopTau > 0) || !Double.isFinite(discopopTau)) {
      throw new IllegalArgumentException("discopop_tau must be a finite number > 0, got " + discopopTau);
    }
    this.types = List.copyOf(types);
    this.weights = new double[types.size()];
    for (int i = 0; i < this.weights.length; i++) {
      this.weights[i] = weights == null ? 1.0 : weights.get(i);
    }
    this.beta = beta;
    this.labelSmoothing = labelSmoothing;
    this.rpoAlpha = rpoAlpha;
    this.discopopTau = discopopTau;
    this.bcoRewards = types.contains(LossType.BCO_PAIR) ? new RunningMean() : null;
  }

  public static DpoLoss of(TrainSettings settings) {
    return new DpoLoss(settings.lossType(), settings.lossWeights(), settings.beta(), settings.labelSmoothing(),
        settings.rpoAlpha(), settings.discopopTau());
  }

  public List<LossType> types() {
    return types;
  }

  public double beta() {
    return beta;
  }

  public double labelSmoothing() {
    return labelSmoothing;
  }

  /** The NLL term's weight, or null without one. */
  public Double rpoAlpha() {
    return rpoAlpha;
  }

  /** bco_pair's running mean reward (what a checkpoint keeps), or null without bco_pair. */
  public RunningMean bcoRewards() {
    return bcoRewards;
  }

  /** True with ipo among the types: every type then sees per-token mean log-probs, as in TRL. */
  public boolean usesMeanLogProbs() {
    return types.contains(LossType.IPO);
  }

  /**
   * True when the loss formula needs reference log-probs (any type but reference_free). A training run computes them
   * for every type anyway: the rewards {@code beta (log pi - log ref)} use them, reference_free's too (TRL 0.22.2).
   */
  public boolean needsReference() {
    return types.stream().anyMatch(t -> t != LossType.REFERENCE_FREE);
  }

  /** Without the NLL term, and without updating bco_pair's running mean (evaluation, or a test of one formula). */
  public DpoOutput compute(NDArray policyChosen, NDArray policyRejected, NDArray refChosen, NDArray refRejected) {
    return compute(policyChosen, policyRejected, refChosen, refRejected, null, null, false);
  }

  /**
   * @param policyChosen [B] log pi(y_w|x) (or its per-token mean, see {@link #usesMeanLogProbs}), with gradient
   * @param policyRejected [B] log pi(y_l|x), likewise
   * @param refChosen [B] log ref(y_w|x); may be null only for reference_free (rewards then use 0)
   * @param refRejected [B] log ref(y_l|x); likewise
   * @param chosenLogpSum [B] summed log pi(y_w|x) with gradient, for the NLL term; null without {@code rpo_alpha}
   * @param chosenTokens [B] the chosen responses' scored token counts; null without {@code rpo_alpha}
   * @param training true in a training step: bco_pair's running mean takes in this batch (TRL also does so in
   *     evaluation; here evaluation leaves training state alone)
   */
  public DpoOutput compute(NDArray policyChosen, NDArray policyRejected, NDArray refChosen, NDArray refRejected,
      NDArray chosenLogpSum, NDArray chosenTokens, boolean training) {
    if (needsReference() && (refChosen == null || refRejected == null)) {
      throw new IllegalArgumentException("loss_type " + names() + " needs reference log-probs");
    }
    if (rpoAlpha != null && (chosenLogpSum == null || chosenTokens == null)) {
      throw new IllegalArgumentException("rpo_alpha needs the chosen responses' summed log-probs and token counts");
    }
    NDArray losses = null;
    NDArray chosenRewards = null;
    NDArray rejectedRewards = null;
    List<NDArray> scratch = new ArrayList<>();
    try {
      // TRL's order of operations: h = (pi_w - pi_l) - (ref_w - ref_l), c = pi_w - ref_w, r = pi_l - ref_l.
      NDArray piRatio = track(scratch, policyChosen.sub(policyRejected));
      NDArray h = null;
      NDArray c = null;
      NDArray r = null;
      if (refChosen != null && refRejected != null) {
        NDArray refRatio = track(scratch, refChosen.sub(refRejected));
        h = track(scratch, piRatio.sub(refRatio));
        c = track(scratch, policyChosen.sub(refChosen));
        r = track(scratch, policyRejected.sub(refRejected));
      }
      for (int i = 0; i < types.size(); i++) {
        LossType type = types.get(i);
        boolean noRef = type == LossType.REFERENCE_FREE;
        NDArray one = formula(type, noRef ? piRatio : h, c, r, policyChosen, policyRejected, refChosen, refRejected,
            training);
        losses = accumulate(losses, one, weights[i]);
        // Rewards use the reference whenever there is one (TRL's, reference_free included).
        chosenRewards = accumulate(chosenRewards, reward(c != null ? c : policyChosen), weights[i]);
        rejectedRewards = accumulate(rejectedRewards, reward(r != null ? r : policyRejected), weights[i]);
      }
      NDArray nll = null;
      if (rpoAlpha != null) {
        try (NDArray logpSum = chosenLogpSum.sum(); NDArray minus = logpSum.neg(); NDArray tokens = chosenTokens.sum();
            NDArray count = tokens.toType(logpSum.getDataType(), false)) {
          nll = minus.div(count);
        }
        losses = accumulate(losses, ScalarOps.mul(nll, rpoAlpha), 1.0);
      }
      NDArray loss = losses.mean();
      return new DpoOutput(loss, losses, chosenRewards, rejectedRewards, policyChosen, policyRejected, nll);
    } catch (RuntimeException | Error e) {
      for (NDArray a : new NDArray[] {losses, chosenRewards, rejectedRewards}) {
        if (a != null) {
          a.close();
        }
      }
      throw e;
    } finally {
      scratch.forEach(NDArray::close);
    }
  }

  /**
   * One type's per-pair losses from {@code h} (for reference_free without the reference's part) and the log-ratios
   * {@code c} and {@code r}; aot sorts the raw log-probs' differences itself.
   */
  private NDArray formula(LossType type, NDArray h, NDArray c, NDArray r, NDArray pc, NDArray pr, NDArray rc,
      NDArray rr, boolean training) {
    return switch (type) {
      case SIGMOID, REFERENCE_FREE -> smoothedSigmoid(h, -1.0, labelSmoothing);
      case ROBUST -> ScalarOps.divi(smoothedSigmoid(h, +1.0, labelSmoothing), 1 - 2 * labelSmoothing);
      case HINGE -> {
        try (NDArray z = ScalarOps.mul(h, -beta).addi(1.0)) {
          yield Activation.relu(z);
        }
      }
      case IPO -> {
        try (NDArray shifted = h.sub(1 / (2 * beta))) {
          yield shifted.square();
        }
      }
      case EXO_PAIR -> exo(h);
      case NCA_PAIR -> {
        // -log s(x) = softplus(-x) and -log s(-x) = softplus(x).
        try (NDArray zc = ScalarOps.mul(c, beta); NDArray zr = ScalarOps.mul(r, beta); NDArray minusZc = zc.neg();
            NDArray a = Activation.softPlus(minusZc); NDArray b = Activation.softPlus(zc);
            NDArray d = Activation.softPlus(zr); NDArray half = b.add(d)) {
          yield a.add(ScalarOps.muli(half, 0.5));
        }
      }
      case BCO_PAIR -> bco(c, r, training);
      case SPPO_HARD -> {
        try (NDArray a = c.sub(0.5 / beta); NDArray b = r.add(0.5 / beta); NDArray a2 = a.square();
            NDArray b2 = b.square()) {
          yield a2.add(b2);
        }
      }
      case AOT -> {
        try (NDArray pi = pc.sub(pr); NDArray ref = rc.sub(rr); NDArray piSorted = pi.sort(0);
            NDArray refSorted = ref.sort(0); NDArray delta = piSorted.sub(refSorted)) {
          yield smoothedSigmoid(delta, -1.0, labelSmoothing);
        }
      }
      case AOT_PAIR -> {
        try (NDArray cSorted = c.sort(0); NDArray rSorted = r.sort(0); NDArray delta = cSorted.sub(rSorted)) {
          yield smoothedSigmoid(delta, -1.0, labelSmoothing);
        }
      }
      case APO_ZERO -> {
        // Raise the chosen likelihood, lower the rejected one: 1 - s(beta c) + s(beta r).
        try (NDArray zc = ScalarOps.mul(c, beta); NDArray zr = ScalarOps.mul(r, beta);
            NDArray sc = Activation.sigmoid(zc); NDArray sr = Activation.sigmoid(zr)) {
          yield sr.sub(sc).addi(1.0);
        }
      }
      case APO_DOWN -> {
        // Lower both, the rejected more: s(beta c) + 1 - s(beta (c - r)).
        try (NDArray cMinusR = c.sub(r); NDArray zc = ScalarOps.mul(c, beta);
            NDArray zh = ScalarOps.mul(cMinusR, beta); NDArray sc = Activation.sigmoid(zc);
            NDArray sh = Activation.sigmoid(zh)) {
          yield sc.sub(sh).addi(1.0);
        }
      }
      case DISCOPOP -> discopop(h);
    };
  }

  private NDArray exo(NDArray h) {
    double e = labelSmoothing == 0 ? EXO_EPSILON : labelSmoothing;
    // log s(z) = -softplus(-z): s(z) (log s(z) - log(1-e)) + s(-z) (log s(-z) - log e).
    try (NDArray z = ScalarOps.mul(h, beta); NDArray minusZ = z.neg(); NDArray sz = Activation.sigmoid(z);
        NDArray sMinusZ = Activation.sigmoid(minusZ);
        NDArray logSz = Activation.softPlus(minusZ).negi().subi(Math.log(1 - e));
        NDArray logSMinusZ = Activation.softPlus(z).negi().subi(Math.log(e));
        NDArray first = sz.mul(logSz)) {
      return sMinusZ.mul(logSMinusZ).addi(first);
    }
  }

  private NDArray bco(NDArray c, NDArray r, boolean training) {
    try (NDArray zc = ScalarOps.mul(c, beta); NDArray zr = ScalarOps.mul(r, beta)) {
      if (training) {
        try (NDArray both = zc.concat(zr); NDArray mean = both.mean()) {
          float x = mean.getFloat(); // detached: a host number
          if (Float.isFinite(x)) {
            // A NaN batch would poison every later step; its own loss is NaN anyway, so the step is refused.
            bcoRewards.update(x);
          }
        }
      }
      double d = bcoRewards.mean();
      // -log s(beta c - d) - log s(-(beta r - d)) = softplus(d - beta c) + softplus(beta r - d).
      try (NDArray a = zc.sub(d); NDArray minusA = a.neg(); NDArray b = zr.sub(d);
          NDArray first = Activation.softPlus(minusA)) {
        return Activation.softPlus(b).addi(first);
      }
    }
  }

  private NDArray discopop(NDArray h) {
    // The logistic and exponential losses of z = beta h, blended by m = s(z / tau).
    try (NDArray z = ScalarOps.mul(h, beta); NDArray minusZ = z.neg();
        NDArray scaled = ScalarOps.div(z, discopopTau); NDArray m = Activation.sigmoid(scaled);
        NDArray logistic = Activation.softPlus(minusZ); NDArray exponential = minusZ.exp();
        NDArray oneMinusM = m.neg().addi(1.0); NDArray first = logistic.mul(oneMinusM)) {
      return exponential.mul(m).addi(first);
    }
  }

  /**
   * {@code -(1-e) log s(z) + sign * e * log s(-z)} with {@code z = beta h}, written with softplus
   * ({@code -log s(z) = softplus(-z)}) so that it stays finite for large |z|.
   */
  private NDArray smoothedSigmoid(NDArray logits, double sign, double e) {
    try (NDArray z = ScalarOps.mul(logits, beta); NDArray minusZ = z.neg()) {
      NDArray main = Activation.softPlus(minusZ);
      if (e == 0) {
        return main;
      }
      ScalarOps.muli(main, 1 - e);
      // e * log s(-z) = -e * softplus(z): sigmoid (sign -1) adds e * softplus(z), robust (sign +1) subtracts it.
      try (NDArray flipped = Activation.softPlus(z)) {
        return main.addi(ScalarOps.muli(flipped, -sign * e));
      }
    }
  }

  /**
   * {@code sum + weight * term}, closing both inputs. Never in place: a term may be an output that its backward
   * reads again (relu's, sigmoid's).
   */
  private static NDArray accumulate(NDArray sum, NDArray term, double weight) {
    NDArray weighted = term;
    if (weight != 1.0) {
      try (term) {
        weighted = ScalarOps.mul(term, weight);
      }
    }
    if (sum == null) {
      return weighted;
    }
    try (NDArray a = sum; NDArray b = weighted) {
      return a.add(b);
    }
  }

  private static NDArray track(List<NDArray> scratch, NDArray a) {
    scratch.add(a);
    return a;
  }

  private NDArray reward(NDArray logRatio) {
    try (NDArray detached = logRatio.stopGradient()) {
      return detached.mul(beta);
    }
  }

  private String names() {
    return types.size() == 1 ? ConfigLoader.yamlName(types.get(0))
        : types.stream().map(ConfigLoader::yamlName).toList().toString();
  }
}
