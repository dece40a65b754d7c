package io.sparkdpo.model;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/**
 * Switches PyTorch's gradient recording off on the current thread and restores the previous mode on close.
 * Grad mode is per thread and DJL only turns it off on the thread that loaded the engine, so every
 * inference path (reference log-probs in Spark tasks, evaluation, generation) wraps itself in one.
 */
public final class NoGrad implements AutoCloseable {
  static {
    Engine.getEngine("PyTorch"); // the JNI calls below need the native library loaded
  }

  private final boolean previous;

  private NoGrad() {
    previous = JniUtils.isGradMode();
    JniUtils.setGradMode(false);
  }

  /** Enters no-grad mode; use in try-with-resources. */
  public static NoGrad enter() {
    return new NoGrad();
  }

  @Override
  public void close() {
    JniUtils.setGradMode(previous);
  }
}
