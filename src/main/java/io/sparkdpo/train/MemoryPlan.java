package io.sparkdpo.train;

import java.util.List;

/**
 * What one training worker holds at its peak, by component, as {@link MemoryPlanner} computes it: the lasting
 * parts (weights, gradients, optimizer state, master weights, reference, LoRA adapters, all-reduce buffer, runtime
 * overhead) and the activations of the phase of a step that needs the most ({@link #peakPhase()}).
 *
 * @param items the components in print order; their bytes add up to {@link #totalBytes()}
 * @param phases every phase of a step with the activation bytes it holds on top of the lasting parts
 * @param peakPhase the name of the phase with the most activation bytes
 */
public record MemoryPlan(MemoryPlanner.Job job, List<Item> items, List<Phase> phases, String peakPhase) {

  /** One component: a stable key (for JSON), its bytes, and how they were counted. */
  public record Item(String key, long bytes, String how) {}

  /** Activation (and transient) bytes of one phase of the step, beyond the lasting parts. */
  public record Phase(String name, long bytes) {}

  public MemoryPlan {
    items = List.copyOf(items);
    phases = List.copyOf(phases);
  }

  public long totalBytes() {
    return items.stream().mapToLong(Item::bytes).sum();
  }

  /** The bytes of the item named {@code key}, 0 when the plan has none. */
  public long bytes(String key) {
    return items.stream().filter(i -> i.key().equals(key)).mapToLong(Item::bytes).sum();
  }

  /** Everything but the runtime overhead: what the model, optimizer and activations add to a bare process. */
  public long bytesAboveOverhead() {
    return totalBytes() - bytes(MemoryPlanner.OVERHEAD);
  }
}
