package io.sparkdpo.data;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * Token lengths in power-of-two buckets: {@code counts[i]} is the number of values in
 * ({@code upperBounds[i-1]}, {@code upperBounds[i]}], the first bucket starting at 0.
 */
public record LengthHistogram(
    @JsonProperty("upper_bounds") List<Integer> upperBounds,
    @JsonProperty("counts") List<Long> counts,
    @JsonProperty("max") int max,
    @JsonProperty("total") long total) {}
