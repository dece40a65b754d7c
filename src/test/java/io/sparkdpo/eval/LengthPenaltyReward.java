package io.sparkdpo.eval;

/** A user-style reward for plug-in tests: minus the continuation's length in characters. */
public final class LengthPenaltyReward implements RewardFunction {
  @Override
  public String name() {
    return "length-penalty";
  }

  @Override
  public double score(String prompt, String continuation) {
    return -continuation.length();
  }

  /** Not a RewardFunction: loading it by name must fail clearly. */
  public static final class NotAReward {}

  /** No no-argument constructor. */
  public static final class NeedsArgument implements RewardFunction {
    public NeedsArgument(int scale) {}

    @Override
    public String name() {
      return "needs-argument";
    }

    @Override
    public double score(String prompt, String continuation) {
      return 0;
    }
  }

  /** Fails while being built. */
  public static final class Broken implements RewardFunction {
    public Broken() {
      throw new IllegalStateException("model file missing");
    }

    @Override
    public String name() {
      return "broken";
    }

    @Override
    public double score(String prompt, String continuation) {
      return 0;
    }
  }
}
