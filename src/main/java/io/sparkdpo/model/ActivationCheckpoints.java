package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.util.ArrayList;
import java.util.List;

/**
 * Activation checkpointing (transformers' {@code gradient_checkpointing}) for the training passes of one model on one
 * thread, opened by {@link CausalLM#gradientCheckpointing} and owned (closed) by the caller. torch recomputes a
 * checkpointed module inside backward through a custom autograd function; DJL has none, so the recomputation is a
 * second, explicit backward that the caller triggers:
 *
 * <ol>
 *   <li>forward: the embedding and the decoder layers run without graph, one layer at a time, each layer's
 *       intermediates freed before the next; only each layer's input [B, T, d] is kept. The last layer's output
 *       becomes a leaf that records its gradient, and the final norm, the head and the loss are recorded from it as
 *       usual;
 *   <li>the caller back-propagates its loss: gradients reach the head, the final norm and that leaf;
 *   <li>{@link #backward()}: for layer L-1 down to 0, the layer runs again, recorded, from a leaf copy of its kept
 *       input, and is back-propagated with the gradient that arrived at its output. That adds the layer's parameter
 *       gradients and yields its input's gradient, the upstream gradient of the layer below; its graph is freed
 *       before the next layer. Last, the embedding is recorded again and back-propagated the same way.
 * </ol>
 *
 * <p>The recomputation calls the layer's own forward, so whatever a layer consults (rotary table, attention mask,
 * fused or explicit ops) enters both runs identically. Gradients equal the plain recorded pass's up to float
 * rounding (the same ops, other summation points). A layer that draws random numbers would have to draw the same
 * ones twice: none does today.
 *
 * <p>Peak activation memory falls from every layer's saved tensors to L + 1 arrays [B, T, d] plus one layer's
 * tensors during backward, for about one more forward of the decoder stack.
 */
public final class ActivationCheckpoints implements AutoCloseable {
  /** The pieces of a model a pass runs and recomputes; results are attached to their input's manager. */
  interface Segments {
    int layers();

    /** Token ids [B, T] (int64) to the first layer's input. */
    NDArray embed(NDArray ids);

    /**
     * Whether {@link #embed} records a graph (its weight requires a gradient). Asked of the weight: DJL's
     * {@code requiresGrad} of a recorded result is false (it answers for leaves only).
     */
    boolean embeddingTrains();

    /** Decoder layer {@code index} on its input [B, T, d]. */
    NDArray layer(int index, NDArray x);
  }

  private final NDManager manager;
  private final Runnable release;
  private final List<Pass> passes = new ArrayList<>();
  private boolean closed;

  /**
   * @param manager holds every pass's kept arrays; closed with this object
   * @param release called once on close (the model forgets this object)
   */
  ActivationCheckpoints(NDManager manager, Runnable release) {
    this.manager = manager;
    this.release = release;
  }

  /** A manager for one pass's kept arrays (its token ids, rotary table, mask), freed when the pass is replayed. */
  NDManager newPassManager() {
    requireOpen();
    return manager.newSubManager();
  }

  /**
   * Runs {@code segments} on {@code ids} (attached to {@code keep}, a {@link #newPassManager()}) without graph, keeping
   * each layer's input, and returns the last layer's output as a leaf that records its gradient (attached to
   * {@code keep}). The pass waits for {@link #backward()}.
   */
  NDArray forward(NDManager keep, NDArray ids, Segments segments) {
    requireOpen();
    NDArray[] inputs = new NDArray[segments.layers()];
    NDArray x;
    try (NoGrad ignored = NoGrad.enter()) {
      x = segments.embed(ids);
      for (int i = 0; i < inputs.length; i++) {
        inputs[i] = x;
        x = layerOutside(keep, i, x, segments);
      }
    }
    NDArray top;
    try (NDArray last = x) {
      top = leafCopy(last);
    }
    passes.add(new Pass(keep, ids, segments, inputs, top));
    return top;
  }

  /** Layer {@code i} in a scope of its own, so its intermediates are freed at once; the output joins {@code keep}. */
  private static NDArray layerOutside(NDManager keep, int i, NDArray x, Segments segments) {
    try (NDManager scope = keep.newSubManager()) {
      x.tempAttach(scope);
      NDArray out = segments.layer(i, x);
      out.attach(keep);
      return out;
    }
  }

  /**
   * The decoder layers' and the embedding's share of the gradients of every pass since the last call, added to the
   * parameters' gradients: call it after back-propagating a loss computed from the passes' hidden states (inside the
   * same GradientCollector, before the gradients are read). Recording is switched on for the call.
   *
   * @throws IllegalStateException when no gradient reached a pass's hidden states (the loss was not back-propagated
   *     yet, or does not depend on them)
   */
  public void backward() {
    requireOpen();
    boolean previous = JniUtils.isGradMode();
    JniUtils.setGradMode(true);
    try {
      while (!passes.isEmpty()) {
        Pass pass = passes.remove(passes.size() - 1);
        try {
          pass.replay();
        } finally {
          pass.keep.close();
        }
      }
    } finally {
      JniUtils.setGradMode(previous);
    }
  }

  /** Passes recorded since the last {@link #backward()} (tests and diagnostics). */
  int pendingPasses() {
    return passes.size();
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    passes.clear();
    try {
      manager.close();
    } finally {
      release.run();
    }
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("these activation checkpoints are closed");
    }
  }

  /** A copy of {@code x} outside any graph that records its gradient: where a recorded segment starts. */
  private static NDArray leafCopy(NDArray x) {
    // duplicate() is a copy outside the graph (docs/djl-pitfalls.md), here exactly what is wanted; it also turns a
    // bf16 inference tensor (Casts) into a normal one that can record a gradient.
    NDArray copy = x.duplicate();
    copy.setRequiresGradient(true);
    return copy;
  }

  /** One forward pass waiting for its backward. */
  private record Pass(NDManager keep, NDArray ids, Segments segments, NDArray[] inputs, NDArray top) {

    void replay() {
      NDArray upstream = gradientOf(top);
      if (upstream == null) {
        throw new IllegalStateException("no gradient reached the hidden states of a checkpointed pass: call "
            + "backward() after back-propagating a loss computed from them");
      }
      for (int i = inputs.length - 1; i >= 0; i--) {
        try (NDManager scope = keep.newSubManager()) {
          NDArray x = leafCopy(inputs[i]);
          x.attach(scope);
          inputs[i].close();
          NDArray out = segments.layer(i, x);
          JniUtils.backward((PtNDArray) out, (PtNDArray) upstream, false, false);
          upstream.close();
          upstream = gradientOf(x);
          if (upstream == null) {
            throw new IllegalStateException("decoder layer " + i + " passed no gradient to its input");
          }
          upstream.attach(keep);
        }
      }
      try (NDManager scope = keep.newSubManager()) {
        ids.tempAttach(scope);
        NDArray embedded = segments.embed(ids);
        // A frozen embedding (LoRA without embed_tokens in modules_to_save) records nothing: no gradient to add.
        if (segments.embeddingTrains()) {
          JniUtils.backward((PtNDArray) embedded, (PtNDArray) upstream, false, false);
        }
      } finally {
        upstream.close();
      }
    }

    /** The gradient accumulated on a leaf, or null when none reached it (DJL's getGradient() would invent zeros). */
    private static NDArray gradientOf(NDArray leaf) {
      return JniUtils.getGradient((PtNDArray) leaf);
    }
  }
}
