package io.sparkdpo.config;

import java.util.List;

/**
 * Placeholder of the lora helper's record (issue 13 contract), replaced by theirs on merge: LoRA settings with
 * PEFT's names and meanings.
 */
public record PeftSettings(String type, int r, double alpha, double dropout, List<String> targetModules,
    List<String> modulesToSave) implements Validated {

  public PeftSettings {
    targetModules = targetModules == null ? List.of() : List.copyOf(targetModules);
    modulesToSave = modulesToSave == null ? List.of() : List.copyOf(modulesToSave);
  }

  public double scaling() {
    return alpha / r;
  }

  @Override
  public void validate(String prefix, Violations v) {
    v.oneOf(prefix + ".type", type, "lora");
    v.positive(prefix + ".r", r);
    v.positive(prefix + ".alpha", alpha);
    v.inRange(prefix + ".dropout", dropout, 0.0, 1.0);
    v.require(!targetModules.isEmpty(), prefix + ".target_modules", "must name at least one module", targetModules);
  }
}
