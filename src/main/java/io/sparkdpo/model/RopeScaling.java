package io.sparkdpo.model;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * How a config rescales rotary position embeddings ({@code config.json}'s {@code rope_scaling}), and the inverse
 * frequencies that follow. Supported, as transformers computes them in {@code modeling_rope_utils}:
 *
 * <ul>
 *   <li>{@code default} (or no {@code rope_scaling}): {@code inv_freq_i = 1 / theta^(2i / head_dim)};
 *   <li>{@code linear}: {@code inv_freq / factor}, the same as dividing positions by {@code factor};
 *   <li>{@code llama3} (Llama 3.1 / 3.2): with {@code wavelen = 2 pi / inv_freq}, {@code low = original / low_freq_factor}
 *       and {@code high = original / high_freq_factor} wavelengths: shorter than {@code high} unchanged, longer than
 *       {@code low} divided by {@code factor}, in between {@code (1 - s) inv_freq / factor + s inv_freq} with
 *       {@code s = (original / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)}.
 * </ul>
 *
 * Every other type (dynamic, yarn, longrope, su, mrope...) changes the maths in ways not implemented and is refused
 * with the key named. None of the supported types rescales attention ({@code attention_factor} is 1).
 *
 * @param originalMaxPositionEmbeddings llama3's {@code original_max_position_embeddings}; 0 for the other types
 */
public record RopeScaling(Type type, double factor, double lowFreqFactor, double highFreqFactor,
    int originalMaxPositionEmbeddings) {

  public enum Type { DEFAULT, LINEAR, LLAMA3 }

  public static final RopeScaling NONE = new RopeScaling(Type.DEFAULT, 1.0, 0.0, 0.0, 0);

  public RopeScaling {
    if (type == null) {
      throw new IllegalArgumentException("rope_scaling.rope_type: missing");
    }
    if (type != Type.DEFAULT && !(factor > 0)) {
      throw new IllegalArgumentException("rope_scaling.factor: must be > 0 (got " + factor + ")");
    }
    if (type == Type.LLAMA3) {
      if (!(lowFreqFactor > 0)) {
        throw new IllegalArgumentException("rope_scaling.low_freq_factor: must be > 0 (got " + lowFreqFactor + ")");
      }
      if (!(highFreqFactor > lowFreqFactor)) {
        throw new IllegalArgumentException("rope_scaling.high_freq_factor: must be > low_freq_factor="
            + lowFreqFactor + " (got " + highFreqFactor + ")");
      }
      if (originalMaxPositionEmbeddings <= 0) {
        throw new IllegalArgumentException("rope_scaling.original_max_position_embeddings: must be > 0 (got "
            + originalMaxPositionEmbeddings + ")");
      }
    }
  }

  public static RopeScaling linear(double factor) {
    return new RopeScaling(Type.LINEAR, factor, 0.0, 0.0, 0);
  }

  public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor, int original) {
    return new RopeScaling(Type.LLAMA3, factor, lowFreqFactor, highFreqFactor, original);
  }

  /**
   * Parses a {@code rope_scaling} object (null or JSON null: none). The type is {@code rope_type}, or the legacy
   * {@code type}; {@code key} ({@code rope_scaling}, or {@code rope_parameters} for transformers 5 configs) prefixes
   * the field in error messages. Sub-keys the type does not read are ignored, as transformers does.
   */
  public static RopeScaling fromJson(JsonNode node, String key) {
    if (node == null || node.isNull()) {
      return NONE;
    }
    if (!node.isObject()) {
      throw new IllegalArgumentException(key + ": must be an object or null (got " + node + ")");
    }
    JsonNode ropeType = node.get("rope_type");
    JsonNode legacy = node.get("type");
    if (ropeType != null && legacy != null && !ropeType.asText().equals(legacy.asText())) {
      throw new IllegalArgumentException(key + ".type: " + legacy + " contradicts rope_type " + ropeType);
    }
    JsonNode t = ropeType != null ? ropeType : legacy;
    if (t == null || t.isNull()) {
      throw new IllegalArgumentException(key + ".rope_type: missing (the scaling type; supported: default, linear, "
          + "llama3)");
    }
    String name = ropeType != null ? "rope_type" : "type";
    return switch (t.asText()) {
      case "default" -> NONE;
      case "linear" -> linear(number(node, key, "factor"));
      case "llama3" -> llama3(number(node, key, "factor"), number(node, key, "low_freq_factor"),
          number(node, key, "high_freq_factor"), integer(node, key, "original_max_position_embeddings"));
      default -> throw new IllegalArgumentException(key + "." + name + ": " + t + " is not supported (supported: "
          + "default, linear, llama3)");
    };
  }

  private static double number(JsonNode node, String key, String field) {
    JsonNode v = node.get(field);
    if (v == null || v.isNull()) {
      throw new IllegalArgumentException(key + "." + field + ": missing (needed by " + key + " type "
          + node.path("rope_type").asText(node.path("type").asText()) + ")");
    }
    if (!v.isNumber()) {
      throw new IllegalArgumentException(key + "." + field + ": must be a number (got " + v + ")");
    }
    return v.asDouble();
  }

  private static int integer(JsonNode node, String key, String field) {
    double v = number(node, key, field);
    if (v != Math.rint(v) || Math.abs(v) > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(key + "." + field + ": must be an integer (got " + v + ")");
    }
    return (int) v;
  }

  /**
   * The {@code headDim / 2} inverse frequencies of rotary pair i, as transformers computes them: in float32, step by
   * step (each Java float operation below is one float32 tensor operation there, in the same order, with Python
   * scalars rounded to float32 as torch does). The rotation angle of pair i at position p is then
   * {@code p * inverseFrequencies[i]}, formed in double by the caller.
   *
   * <p>Why float32: a model is trained with, and transformers runs it with, these float32 frequencies. Their relative
   * error against the exact value is up to about 1e-7, which at position 100,000 moves an angle by up to 1e-2 rad;
   * using exact (double) frequencies would drift away from the trained model at long positions, while rounding the
   * same way keeps every angle within float32 rounding of the angle transformers uses. The only operation here that is
   * not correctly rounded in both is the power {@code theta^(2i/d)} (torch's float32 pow is within 1 ulp), so a
   * frequency can differ from transformers' by one float32 ulp (relative 1.2e-7), and a llama3 frequency that follows
   * from it by a few ulp; {@code RopeScalingTest} checks them against values torch computed this way.
   */
  public float[] inverseFrequencies(double theta, int headDim) {
    int half = headDim / 2;
    float base = (float) theta;
    float[] inv = new float[half];
    for (int i = 0; i < half; i++) {
      // 1.0 / (base ** (arange(0, dim, 2).float() / dim)); torch's 1.0 / t is t.reciprocal() * 1.0
      float exponent = (float) (2 * i) / (float) headDim;
      inv[i] = 1f / (float) Math.pow(base, exponent);
    }
    switch (type) {
      case DEFAULT -> { }
      case LINEAR -> {
        float f = (float) factor;
        for (int i = 0; i < half; i++) {
          inv[i] = inv[i] / f;
        }
      }
      case LLAMA3 -> llama3InPlace(inv);
    }
    return inv;
  }

  /** transformers' {@code _compute_llama3_parameters}, operation for operation in float32. */
  private void llama3InPlace(float[] inv) {
    float f = (float) factor;
    float low = (float) lowFreqFactor;
    float old = (float) originalMaxPositionEmbeddings;
    float lowFreqWavelen = (float) (originalMaxPositionEmbeddings / lowFreqFactor);
    float highFreqWavelen = (float) (originalMaxPositionEmbeddings / highFreqFactor);
    float twoPi = (float) (2 * Math.PI);
    float span = (float) (highFreqFactor - lowFreqFactor);
    for (int i = 0; i < inv.length; i++) {
      float wavelen = (1f / inv[i]) * twoPi; // 2 * math.pi / inv_freq
      float scaled = wavelen > lowFreqWavelen ? inv[i] / f : inv[i];
      boolean medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
      if (medium) {
        float smooth = ((1f / wavelen) * old - low) / span; // (old_context_len / wavelen - low) / (high - low)
        scaled = (1f - smooth) * scaled / f + smooth * scaled;
      }
      inv[i] = scaled;
    }
  }
}
