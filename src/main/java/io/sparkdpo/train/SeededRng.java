package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * A small seeded generator (SplitMix64) whose whole state is one long, so a checkpoint can store it as JSON and
 * a resumed run draws exactly the numbers the uninterrupted run would have. Not for cryptography.
 */
public final class SeededRng {
  private static final String ALGORITHM = "splitmix64";
  private long state;

  public SeededRng(long seed) {
    this.state = seed;
  }

  /** The serialisable state. */
  public record State(@JsonProperty("algorithm") String algorithm, @JsonProperty("state") long state) {}

  public State state() {
    return new State(ALGORITHM, state);
  }

  public static SeededRng fromState(State s) {
    if (!ALGORITHM.equals(s.algorithm())) {
      throw new IllegalArgumentException("unknown RNG algorithm '" + s.algorithm() + "', expected " + ALGORITHM);
    }
    return new SeededRng(s.state());
  }

  public long nextLong() {
    state += 0x9E3779B97F4A7C15L;
    return mix(state);
  }

  /** Uniform in [0, bound), without modulo bias. */
  public int nextInt(int bound) {
    if (bound <= 0) {
      throw new IllegalArgumentException("bound must be > 0, got " + bound);
    }
    int bits;
    int value;
    do {
      bits = (int) (nextLong() >>> 33);
      value = bits % bound;
    } while (bits - value + (bound - 1) < 0);
    return value;
  }

  /** Uniform in [0, 1). */
  public double nextDouble() {
    return (nextLong() >>> 11) * 0x1.0p-53;
  }

  /** Fisher-Yates, in place. */
  public void shuffle(int[] values) {
    for (int i = values.length - 1; i > 0; i--) {
      int j = nextInt(i + 1);
      int t = values[i];
      values[i] = values[j];
      values[j] = t;
    }
  }

  /** A well-spread seed derived from two numbers (e.g. a run seed and an epoch). */
  public static long derive(long seed, long salt) {
    return mix(seed ^ mix(salt + 0x632BE59BD9B4E019L));
  }

  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
