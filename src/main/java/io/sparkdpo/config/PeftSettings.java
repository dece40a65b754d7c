package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * A {@code peft:} section: low-rank adapters (LoRA) instead of full fine-tuning, with the names and meanings of
 * PEFT's {@code LoraConfig}. Each target linear layer W gets {@code lora_A} [r, in] and {@code lora_B} [out, r] and
 * computes {@code W x + (alpha / r) * B A dropout(x)}; the base weights stay frozen. {@code modules_to_save} are
 * trained whole (as trainable copies). Absent keys take PEFT's defaults, except {@code target_modules}, which
 * defaults to every attention and MLP projection (what {@code "all-linear"} means for these models).
 */
public record PeftSettings(
    String type,
    int r,
    double alpha,
    double dropout,
    @JsonProperty("target_modules") List<String> targetModules,
    @JsonProperty("modules_to_save") List<String> modulesToSave) implements Validated {
  /** The linear layers of a Llama-family decoder layer, in state-dict order. */
  public static final List<String> PROJECTIONS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
      "up_proj", "down_proj");
  /** PEFT's shorthand for every linear layer but the output head. */
  public static final String ALL_LINEAR = "all-linear";
  /** Modules that may be trained whole. */
  public static final List<String> SAVABLE = List.of("embed_tokens", "lm_head");
  public static final int DEFAULT_R = 8;
  public static final double DEFAULT_ALPHA = 16;

  /**
   * Normalises what was bound: null lists become the defaults, {@code all-linear} (alone, as a string or a
   * one-element list) expands to {@link #PROJECTIONS}, duplicates go, and known projections are put in
   * state-dict order. Unknown names are kept for {@link #validate} to report.
   */
  public PeftSettings {
    type = type == null ? "lora" : type;
    targetModules = normaliseTargets(targetModules);
    modulesToSave = modulesToSave == null ? List.of() : List.copyOf(new LinkedHashSet<>(modulesToSave));
  }

  /** Binding from YAML: absent keys take the defaults; {@code target_modules} may be a list or "all-linear". */
  @JsonCreator
  static PeftSettings bind(@JsonProperty("type") String type, @JsonProperty("r") Integer r,
      @JsonProperty("alpha") Double alpha, @JsonProperty("dropout") Double dropout,
      @JsonProperty("target_modules") Object targetModules,
      @JsonProperty("modules_to_save") List<String> modulesToSave) {
    List<String> targets;
    if (targetModules == null) {
      targets = null;
    } else if (targetModules instanceof String s) {
      targets = List.of(s);
    } else if (targetModules instanceof List<?> list) {
      targets = new ArrayList<>();
      for (Object o : list) {
        targets.add(String.valueOf(o));
      }
    } else {
      throw new IllegalArgumentException("peft.target_modules: must be a list of module names or \"" + ALL_LINEAR
          + "\" (got " + targetModules + ")");
    }
    return new PeftSettings(type, r == null ? DEFAULT_R : r, alpha == null ? DEFAULT_ALPHA : alpha,
        dropout == null ? 0.0 : dropout, targets, modulesToSave);
  }

  /** LoRA on every projection with r 8, alpha 16, no dropout, nothing saved whole. */
  public static PeftSettings defaults() {
    return new PeftSettings("lora", DEFAULT_R, DEFAULT_ALPHA, 0.0, null, null);
  }

  /** PEFT's {@code scaling}: alpha / r (not rank-stabilised). */
  public double scaling() {
    return alpha / r;
  }

  private static List<String> normaliseTargets(List<String> given) {
    if (given == null || (given.size() == 1 && ALL_LINEAR.equals(given.get(0)))) {
      return PROJECTIONS;
    }
    List<String> out = new ArrayList<>();
    for (String p : PROJECTIONS) {
      if (given.contains(p)) {
        out.add(p);
      }
    }
    for (String g : new LinkedHashSet<>(given)) {
      if (!PROJECTIONS.contains(g)) {
        out.add(g);
      }
    }
    return List.copyOf(out);
  }

  @Override
  public void validate(String prefix, Violations v) {
    v.oneOf(prefix + ".type", type, "lora");
    v.positive(prefix + ".r", r);
    v.positive(prefix + ".alpha", alpha);
    v.inRange(prefix + ".dropout", dropout, 0.0, 1.0);
    v.require(!targetModules.isEmpty(), prefix + ".target_modules", "must name at least one of " + PROJECTIONS
        + " or be \"" + ALL_LINEAR + "\"", targetModules);
    for (String t : targetModules) {
      v.require(PROJECTIONS.contains(t), prefix + ".target_modules",
          "must be names from " + PROJECTIONS + " or \"" + ALL_LINEAR + "\" alone", t);
    }
    for (String m : modulesToSave) {
      v.require(SAVABLE.contains(m), prefix + ".modules_to_save", "must be names from " + SAVABLE, m);
    }
  }

  /** This section checked on its own, under {@code prefix}; throws {@link ConfigException} naming the keys. */
  public PeftSettings checked(String prefix) {
    Violations v = new Violations();
    validate(prefix, v);
    v.throwIfAny();
    return this;
  }
}
