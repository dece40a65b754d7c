package io.sparkdpo.data;

import java.lang.management.ManagementFactory;

/**
 * The limits of the chat-template rendering running on this thread ({@link TemplateLimits}), checked before Jinjava
 * renders each node and on every call a template makes, so a loop, a long string or a growing list is stopped where
 * it happens. Going beyond a limit throws {@link Exceeded}, an {@link Error} so that Jinjava, which turns exceptions
 * into template errors and carries on with the next node or loop iteration, lets it through to the renderer.
 */
final class RenderBudget {
  private static final ThreadLocal<RenderBudget> CURRENT = new ThreadLocal<>();
  private static final com.sun.management.ThreadMXBean THREADS = allocationCounter();

  private final TemplateLimits limits;
  private final long deadline;
  private final long allocatedAtStart;

  private RenderBudget(TemplateLimits limits) {
    this.limits = limits;
    this.deadline = System.nanoTime() + limits.timeoutNanos();
    this.allocatedAtStart = allocated();
  }

  /** Starts a rendering on this thread; {@link #end()} it in a finally block. */
  static void start(TemplateLimits limits) {
    CURRENT.set(new RenderBudget(limits));
  }

  static void end() {
    CURRENT.remove();
  }

  /** Fails the rendering on this thread if it is past its deadline or has allocated more than it may. */
  static void check() {
    RenderBudget b = CURRENT.get();
    if (b == null) {
      return;
    }
    if (System.nanoTime() - b.deadline > 0) {
      throw new Exceeded("the chat template did not finish rendering within prepare.template_timeout_s ("
          + b.limits.timeout() + ")");
    }
    long allocated = allocated();
    if (allocated >= 0 && allocated - b.allocatedAtStart > b.limits.maxAllocatedBytes()) {
      throw new Exceeded("the chat template allocated more than " + (b.limits.maxAllocatedBytes() >> 20)
          + " MiB while rendering one conversation (" + TemplateLimits.ALLOCATION_PER_CHAR
          + " x prepare.template_max_chars)");
    }
  }

  /** Fails the rendering on this thread if a string of {@code chars} would be longer than it may build. */
  static void requireLength(long chars) {
    RenderBudget b = CURRENT.get();
    if (b != null && chars > b.limits.maxChars()) {
      throw new Exceeded("the chat template built a string of " + chars + " chars, more than "
          + "prepare.template_max_chars (" + b.limits.maxChars() + ")");
    }
    check();
  }

  private static long allocated() {
    return THREADS == null ? -1 : THREADS.getCurrentThreadAllocatedBytes();
  }

  /** HotSpot counts each thread's allocated bytes cheaply; elsewhere the allocation limit is not enforced. */
  private static com.sun.management.ThreadMXBean allocationCounter() {
    try {
      if (ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t
          && t.isThreadAllocatedMemorySupported()) {
        if (!t.isThreadAllocatedMemoryEnabled()) {
          t.setThreadAllocatedMemoryEnabled(true);
        }
        return t;
      }
    } catch (UnsupportedOperationException | SecurityException e) {
      // not this JVM: the deadline and the string limits still hold
    }
    return null;
  }

  /** A rendering went beyond its limits; the renderer reports the message as the template error. */
  static final class Exceeded extends Error {
    Exceeded(String message) {
      super(message, null, false, false);
    }
  }
}
