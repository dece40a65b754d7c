package io.sparkdpo.cli;

import io.sparkdpo.distributed.TrainingStage;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** What the training commands share: flags that become {@code --set} overrides, and the closing summary. */
final class StageOptions {
  private StageOptions() {}

  /** Adds {@code key=value} when the flag was given. */
  static void add(List<String> overrides, String key, Object value) {
    if (value != null) {
      overrides.add(key + "=" + value);
    }
  }

  /** A YAML flow list of quoted strings, the form --set parses as a list. */
  static String yamlList(List<String> items) {
    List<String> quoted = items.stream().map(s -> "'" + s.replace("'", "''") + "'").toList();
    return "[" + String.join(", ", quoted) + "]";
  }

  static void report(PrintWriter out, String command, TrainingStage.Result r) {
    if (r.upToDate()) {
      out.printf(Locale.ROOT, "%s: %s is up to date (same settings and data, %d steps done); model in %s; nothing to "
          + "do%n", command, r.runDir(), r.steps(), r.modelDir());
    } else {
      out.printf(Locale.ROOT, "%s: %d steps done in %d attempt(s); model in %s; metrics in %s/metrics.jsonl%n",
          command, r.steps(), r.outcome().attempts(), r.modelDir(), r.runDir());
    }
    if (r.lastEval() != null) {
      StringBuilder sb = new StringBuilder();
      for (Map.Entry<String, Object> e : r.lastEval().entrySet()) {
        if (e.getKey().startsWith("eval/") && e.getValue() instanceof Number n) {
          sb.append(String.format(Locale.ROOT, "  %s %.4f", e.getKey(), n.doubleValue()));
        }
      }
      out.printf("final evaluation (step %s):%s%n", r.lastEval().get("step"), sb);
    }
    out.flush();
  }
}
