package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * The running mean of a stream of numbers, each weighted 1: bco_pair's reward baseline, fed one micro-batch's mean
 * reward per training forward, as TRL's {@code RunningMoments} is (its variance is not used by the loss, so not kept).
 * It is state of the run: a checkpoint carries {@link #state()} and a resume {@link #restore}s it, so that a resumed
 * run computes the same losses.
 */
public final class RunningMean {
  private double mean;
  private long count;

  /** Takes in {@code x}; the mean then includes it. */
  public void update(double x) {
    count++;
    mean += (x - mean) / count;
  }

  /** 0 before the first update (TRL's initial mean). */
  public double mean() {
    return mean;
  }

  public long count() {
    return count;
  }

  public State state() {
    return new State(mean, count);
  }

  public void restore(State state) {
    if (state.count() < 0 || !Double.isFinite(state.mean())) {
      throw new IllegalArgumentException("running mean state must have count >= 0 and a finite mean, got " + state);
    }
    mean = state.mean();
    count = state.count();
  }

  /** What a checkpoint stores. */
  public record State(@JsonProperty("mean") double mean, @JsonProperty("count") long count) {}
}
