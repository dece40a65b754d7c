package io.sparkdpo.train;

/**
 * Which prompts PPO's rollout batches take: passes over all P prompts, each pass in its own seeded order (TRL's
 * shuffling dataloader, repeated), read as one endless sequence; update u takes positions {@code [u n, (u+1) n)}.
 * A function of the seed and the update only, so a resumed run, and every replica, picks the same prompts without a
 * cursor in the checkpoint.
 */
public final class PromptOrder {
  private final int prompts;
  private final long seed;

  public PromptOrder(int prompts, long seed) {
    if (prompts < 1) {
      throw new IllegalArgumentException("PPO needs at least one prompt");
    }
    this.prompts = prompts;
    this.seed = seed;
  }

  /** The prompt indices of update {@code update} (0-based) with {@code batch} prompts per update. */
  public int[] batch(long update, int batch) {
    int[] out = new int[batch];
    long pass = -1;
    int[] order = null;
    for (int i = 0; i < batch; i++) {
      long position = update * batch + i;
      if (position / prompts != pass) {
        pass = position / prompts;
        order = passOrder(pass);
      }
      out[i] = order[(int) (position % prompts)];
    }
    return out;
  }

  private int[] passOrder(long pass) {
    int[] order = new int[prompts];
    for (int i = 0; i < prompts; i++) {
      order[i] = i;
    }
    new SeededRng(SeededRng.derive(seed ^ 0x70726f6dL, pass)).shuffle(order);
    return order;
  }
}
