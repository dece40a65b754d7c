package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * Dynamic loss scaling for float16 mixed precision, torch.amp.GradScaler's rule with its defaults: backward runs on
 * the loss times {@link #scale()} (2^16 at first) so that small float16 gradients do not flush to zero; the
 * gradients are divided by it again before clipping. A step whose gradients hold an inf or NaN is skipped (no
 * update, the optimizer's step count stays) and the scale halves; after {@link #GROWTH_INTERVAL} good steps in a row
 * it doubles. Scales are powers of two, so scaling and unscaling are exact in float32. bfloat16 has float32's
 * exponent range and needs none of this: {@link #off()} keeps the scale at 1 and never skips.
 */
public final class LossScaler {
  public static final double INITIAL_SCALE = 65536.0;
  public static final int GROWTH_INTERVAL = 2000;
  private static final double GROWTH = 2.0;
  private static final double BACKOFF = 0.5;

  /** What a checkpoint keeps so a resumed run scales and skips exactly as the uninterrupted one. */
  public record State(
      @JsonProperty("scale") double scale,
      @JsonProperty("good_steps") int goodSteps,
      @JsonProperty("skipped_steps") long skippedSteps) {}

  private final boolean dynamic;
  private double scale;
  private int goodSteps;
  private long skipped;

  private LossScaler(boolean dynamic) {
    this.dynamic = dynamic;
    this.scale = dynamic ? INITIAL_SCALE : 1.0;
  }

  /** float16: dynamic scaling from {@link #INITIAL_SCALE}. */
  public static LossScaler dynamic() {
    return new LossScaler(true);
  }

  /** float32 and bfloat16: scale 1, non-finite gradients stay an error. */
  public static LossScaler off() {
    return new LossScaler(false);
  }

  public boolean isDynamic() {
    return dynamic;
  }

  /** The factor on the loss before backward (1 when off). */
  public double scale() {
    return scale;
  }

  /** Steps skipped so far for non-finite gradients: the loop's step count minus the optimizer's. */
  public long skippedSteps() {
    return skipped;
  }

  /**
   * Records a step's outcome after its gradients were checked: non-finite halves the scale and counts a skip, finite
   * counts towards growth. Only for a dynamic scaler.
   */
  void update(boolean finite) {
    if (!dynamic) {
      throw new IllegalStateException("loss scaling is off");
    }
    if (!finite) {
      scale *= BACKOFF;
      goodSteps = 0;
      skipped++;
    } else if (++goodSteps == GROWTH_INTERVAL) {
      scale *= GROWTH;
      goodSteps = 0;
    }
  }

  /** The state for a checkpoint; null when off (nothing to keep). */
  public State state() {
    return dynamic ? new State(scale, goodSteps, skipped) : null;
  }

  /**
   * Continues from a checkpoint's state; null (a checkpoint of a run without float16, or of an older version) is
   * refused for a dynamic scaler, whose skipped steps the optimizer's step count depends on.
   */
  public void restore(State state, String source) {
    if (!dynamic) {
      return;
    }
    if (state == null || !(state.scale() > 0) || state.goodSteps() < 0 || state.skippedSteps() < 0) {
      throw new IllegalArgumentException(source + ": no valid loss_scale state (" + state + "), but "
          + "mixed_precision is fp16: resume with the mixed_precision the run was started with");
    }
    scale = state.scale();
    goodSteps = state.goodSteps();
    skipped = state.skippedSteps();
  }
}
