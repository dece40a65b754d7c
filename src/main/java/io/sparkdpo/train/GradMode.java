package io.sparkdpo.train;

import ai.djl.pytorch.jni.JniUtils;

/**
 * Switches PyTorch's autograd recording off for the current thread and restores it on close. Needed around
 * in-place updates of parameters: PyTorch refuses in-place ops on leaves that require gradients while recording,
 * and DJL leaves recording on in threads it did not start (Spark task threads).
 */
public final class GradMode implements AutoCloseable {
  private final boolean previous;

  private GradMode(boolean enabled) {
    previous = JniUtils.isGradMode();
    JniUtils.setGradMode(enabled);
  }

  /** Recording off until {@link #close()}. */
  public static GradMode off() {
    return new GradMode(false);
  }

  @Override
  public void close() {
    JniUtils.setGradMode(previous);
  }
}
