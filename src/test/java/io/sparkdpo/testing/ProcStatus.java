package io.sparkdpo.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Fields of Linux's /proc/PID/status in kB (VmHWM: peak resident memory), as the memory benchmarks read them. */
public final class ProcStatus {
  private ProcStatus() {}

  /** A field of this process's status, in kB. */
  public static long self(String field) {
    return read(Path.of("/proc/self/status"), field);
  }

  /** A field of another process's status, in kB; 0 when the process has ended or is not readable. */
  public static long of(long pid, String field) {
    try {
      return read(Path.of("/proc", Long.toString(pid), "status"), field);
    } catch (UncheckedIOException | IllegalStateException e) {
      return 0; // the process ended between listing and reading
    }
  }

  private static long read(Path status, String field) {
    try {
      for (String line : Files.readAllLines(status)) {
        if (line.startsWith(field + ":")) {
          return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    throw new IllegalStateException("no " + field + " in " + status);
  }
}
