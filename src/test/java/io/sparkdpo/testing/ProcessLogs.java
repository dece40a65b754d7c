package io.sparkdpo.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Reads the end of a child process's log, for error messages that say why a process failed. */
final class ProcessLogs {
  private ProcessLogs() {}

  static String tail(Path log, int lines) {
    try {
      if (!Files.exists(log)) {
        return "(" + log + " does not exist)";
      }
      List<String> all = List.of(new String(Files.readAllBytes(log), StandardCharsets.UTF_8).split("\n"));
      return "--- " + log + " (last " + Math.min(lines, all.size()) + " lines) ---\n"
          + String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException e) {
      return "(cannot read " + log + ": " + e + ")";
    }
  }
}
