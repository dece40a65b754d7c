package io.sparkdpo.testing;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Makes the JVM free unreachable direct buffers and refills freed native memory with garbage: what a garbage
 * collection between a forward pass and its backward pass does to arrays DJL made from Java data (on the CPU they
 * alias direct buffers).
 */
public final class DirectMemoryChurn {
  private DirectMemoryChurn() {}

  public static void run() {
    for (int round = 0; round < 3; round++) {
      System.gc();
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
      List<ByteBuffer> filler = new ArrayList<>();
      for (int size = 8; size <= 1 << 16; size *= 2) {
        for (int k = 0; k < 8; k++) {
          ByteBuffer buf = ByteBuffer.allocateDirect(size);
          while (buf.hasRemaining()) {
            buf.put((byte) 0x7F);
          }
          filler.add(buf);
        }
      }
      filler.clear();
    }
  }
}
