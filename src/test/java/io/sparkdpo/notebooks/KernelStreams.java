package io.sparkdpo.notebooks;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * {@code System.out} and {@code System.err} for the length of a notebook run, as a kernel installs them: one pair
 * of streams that write into whichever cell is running. Libraries that keep the stream they found (log4j's console
 * appender, when Spark first starts inside a cell) therefore keep writing into the current cell, and into the
 * original streams once the run is over, instead of into a finished cell's buffer.
 */
final class KernelStreams implements AutoCloseable {
  private final PrintStream originalOut = System.out;
  private final PrintStream originalErr = System.err;
  private final Switch out = new Switch(originalOut);
  private final Switch err = new Switch(originalErr);

  KernelStreams() {
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  /** From now on the streams write into these buffers. */
  void toCell(ByteArrayOutputStream cellOut, ByteArrayOutputStream cellErr) {
    System.out.flush();
    System.err.flush();
    out.target = cellOut;
    err.target = cellErr;
  }

  @Override
  public void close() {
    System.out.flush();
    System.err.flush();
    out.target = originalOut;
    err.target = originalErr;
    System.setOut(originalOut);
    System.setErr(originalErr);
  }

  private static final class Switch extends OutputStream {
    private volatile OutputStream target;

    Switch(OutputStream target) {
      this.target = target;
    }

    @Override
    public void write(int b) {
      try {
        target.write(b);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    @Override
    public void write(byte[] b, int off, int len) {
      try {
        target.write(b, off, len);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    @Override
    public void flush() {
      try {
        target.flush();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
