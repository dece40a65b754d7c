package io.sparkdpo.model;

/**
 * How {@link Generator} picks each next token. {@code temperature == 0} means greedy (argmax); otherwise the
 * logits are divided by the temperature, cut to the {@code topK} most likely tokens (0: no cut), then to the
 * smallest set whose probability reaches {@code topP} (1: no cut), in that order as transformers does, and one
 * token is drawn with a random stream derived from {@code seed} and the row index.
 */
public record SamplingSettings(double temperature, int topK, double topP, int maxNewTokens, long seed)
    implements java.io.Serializable {
  public SamplingSettings {
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be >= 0 (got " + temperature + ")");
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top_k must be >= 0 (got " + topK + ")");
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top_p must be in (0, 1] (got " + topP + ")");
    }
    if (maxNewTokens < 1) {
      throw new IllegalArgumentException("max_new_tokens must be >= 1 (got " + maxNewTokens + ")");
    }
  }

  public static SamplingSettings greedy(int maxNewTokens) {
    return new SamplingSettings(0, 0, 1, maxNewTokens, 0);
  }

  public boolean isGreedy() {
    return temperature == 0;
  }
}
