package io.sparkdpo.deploy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs a short local command (a script, python3) and captures its output, with a time limit. */
record ProcessRun(int exitCode, String output) {
  static ProcessRun run(Path dir, Map<String, String> env, List<String> command) throws IOException,
      InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
    pb.environment().putAll(env);
    Process p = pb.start();
    byte[] out = p.getInputStream().readAllBytes(); // ends when the process closes its output
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IllegalStateException(command + " did not finish within 60 s");
    }
    return new ProcessRun(p.exitValue(), new String(out, StandardCharsets.UTF_8));
  }

  static Path projectDir() {
    return Path.of(System.getProperty("project.basedir", ".")).toAbsolutePath();
  }
}
