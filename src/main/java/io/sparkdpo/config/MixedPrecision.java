package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;

/**
 * {@code train.mixed_precision} / {@code sft.mixed_precision}, with accelerate's names: the matmuls of the trained
 * policy in bfloat16 or float16, master weights, gradients, optimizer state, norms, softmax and the loss in float32.
 * float16 also scales the loss dynamically (torch's GradScaler); bfloat16 has float32's range and needs none.
 */
public enum MixedPrecision {
  NO("no"),
  BF16("bf16"),
  FP16("fp16");

  private final String yaml;

  MixedPrecision(String yaml) {
    this.yaml = yaml;
  }

  @JsonValue
  public String yamlName() {
    return yaml;
  }

  /**
   * The YAML name; YAML 1.1 reads an unquoted {@code no} as the boolean false, which is taken for {@code no} too.
   */
  @JsonCreator
  public static MixedPrecision of(Object value) {
    if (Boolean.FALSE.equals(value)) {
      return NO;
    }
    for (MixedPrecision m : values()) {
      if (m.yaml.equals(String.valueOf(value))) {
        return m;
      }
    }
    throw new IllegalArgumentException("must be no, bf16 or fp16 (got " + value + ")");
  }
}
