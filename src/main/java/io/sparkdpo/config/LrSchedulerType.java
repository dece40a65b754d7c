package io.sparkdpo.config;

import com.fasterxml.jackson.annotation.JsonProperty;

/** Learning-rate schedules, named and shaped as transformers' {@code lr_scheduler_type}. */
public enum LrSchedulerType {
  /** Linear warmup from 0, then linear decay to 0 at the last step. */
  @JsonProperty("linear") LINEAR,
  /** Linear warmup from 0, then half a cosine wave down to 0 at the last step. */
  @JsonProperty("cosine") COSINE,
  /** The configured rate throughout; transformers ignores warmup for this one, and so do we. */
  @JsonProperty("constant") CONSTANT,
  /** Linear warmup from 0, then constant. */
  @JsonProperty("constant_with_warmup") CONSTANT_WITH_WARMUP
}
