package io.sparkdpo.distributed;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A separate JVM running a test main class on the test classpath, driven by lines on stdin and
 * stdout: how tests and benchmarks get real processes on 127.0.0.1 without a cluster.
 */
final class ChildJvm implements AutoCloseable {

  private static final String EOF = "\u0000eof";

  private final Process process;
  private final PrintWriter stdin;
  private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
  private final Path stderr;

  private ChildJvm(Process process, Path stderr) {
    this.process = process;
    this.stderr = stderr;
    this.stdin = new PrintWriter(process.getOutputStream(), true, StandardCharsets.UTF_8);
    Thread reader = new Thread(() -> {
      try (BufferedReader out = new BufferedReader(
          new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line = out.readLine(); line != null; line = out.readLine()) {
          lines.add(line);
        }
      } catch (IOException ignored) {
        // The process ended; EOF below says so.
      }
      lines.add(EOF);
    }, "child-jvm-stdout");
    reader.setDaemon(true);
    reader.start();
  }

  static ChildJvm start(Class<?> mainClass, List<String> jvmOptions, String... args)
      throws IOException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(mainClass.getName());
    command.addAll(List.of(args));
    Path stderr = Files.createTempFile("child-jvm-", ".err");
    Process process = new ProcessBuilder(command)
        .redirectError(stderr.toFile())
        .start();
    return new ChildJvm(process, stderr);
  }

  /** Waits for the next stdout line that starts with {@code prefix}; returns the rest of it. */
  String awaitLine(String prefix, long timeoutSeconds) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
    while (true) {
      long remaining = deadline - System.nanoTime();
      String line = remaining > 0 ? lines.poll(remaining, TimeUnit.NANOSECONDS) : null;
      if (line == null || line.equals(EOF)) {
        throw new IllegalStateException("child JVM " + (line == null ? "sent no '" + prefix
            + "' line within " + timeoutSeconds + " s" : "ended before sending '" + prefix + "'")
            + "; its stderr: " + stderrTail());
      }
      if (line.startsWith(prefix)) {
        return line.substring(prefix.length()).trim();
      }
    }
  }

  void send(String line) {
    stdin.println(line);
  }

  /** Kills the process at once (SIGKILL): no shutdown hooks, sockets closed by the kernel. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  /** Sends a signal by name ({@code STOP}, {@code CONT}) with the system's {@code kill}. */
  void signal(String name) throws Exception {
    Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
    if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
      throw new IllegalStateException("kill -" + name + " " + process.pid() + " failed");
    }
  }

  String stderrTail() {
    try {
      String all = Files.readString(stderr);
      return all.length() > 4000 ? all.substring(all.length() - 4000) : all;
    } catch (IOException e) {
      return "(unreadable: " + e.getMessage() + ")";
    }
  }

  @Override
  public void close() throws Exception {
    if (process.isAlive()) {
      kill();
    }
    Files.deleteIfExists(stderr);
  }
}
