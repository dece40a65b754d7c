package io.sparkdpo.inference;

import io.sparkdpo.eval.RewardFunction;

/** A reward that prefers nothing: every prompt's continuations tie. */
public final class ConstantReward implements RewardFunction {
  @Override
  public String name() {
    return "constant";
  }

  @Override
  public double score(String prompt, String continuation) {
    return 1.0;
  }
}
