package io.sparkdpo.notebooks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The outputs a notebook is committed with: those of the sample run ({@code bin/spark-dpo pipeline --config
 * conf/local.yaml}), so that a reader sees tables and charts on GitHub without running anything.
 *
 * <p>{@link #record} writes them: the notebook executed against the sample run's folders (its defaults, resolved from
 * the notebook's folder as Jupyter's working directory would), saved without the runner's parameters cell, with the
 * project's absolute path turned back into the relative paths a kernel started in {@code notebooks/} prints, and
 * with the digest of the code cells it ran under {@code metadata.spark_dpo}. A notebook edited since then has
 * another digest: the test that checks the saved outputs says to record them again.
 *
 * <p>{@link #structure} is what must agree between the saved outputs and a fresh execution on the test's fixtures:
 * per code cell, the kinds of output in order (printed text, a display and its MIME types, a value), with standard
 * error left out (log lines depend on what else the JVM ran).
 */
final class SavedOutputs {
  static final String METADATA_KEY = "spark_dpo";
  static final String DIGEST_KEY = "code_sha256";
  static final String COMMAND =
      "bin/spark-dpo pipeline --config conf/local.yaml && mvn -o -B -q test -Dtest=RecordNotebookOutputs "
          + "-Dnotebooks.record=true";

  private SavedOutputs() {}

  /** SHA-256 of the code cells' sources, in order, each ended by a NUL. */
  static String digest(Notebook nb) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      for (Notebook.Cell c : nb.codeCells()) {
        sha.update(c.source().getBytes(StandardCharsets.UTF_8));
        sha.update((byte) 0);
      }
      return HexFormat.of().formatHex(sha.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * The notebook file's text with the outputs of {@code execution}, which ran with {@code parameters} pointing
   * at absolute paths under {@code projectDir}.
   */
  static String record(NotebookRunner.Execution execution, Path projectDir) {
    ObjectNode json = ExecutedNotebook.json(execution, false);
    ObjectNode meta = ((ObjectNode) json.get("metadata")).putObject(METADATA_KEY);
    meta.put("outputs", "the sample run: " + COMMAND.substring(0, COMMAND.indexOf(" &&")));
    meta.put(DIGEST_KEY, digest(execution.notebook()));
    String notebooks = execution.notebook().file().getParent().toAbsolutePath().normalize() + "/";
    String project = projectDir.toAbsolutePath().normalize() + "/";
    String text = ExecutedNotebook.text(json)
        .replace(notebooks, "")
        .replace("file://" + project, "../")
        .replace("file:" + project, "../")
        .replace(project, "../");
    String machine = projectDir.toAbsolutePath().normalize().toString();
    if (text.contains(machine)) {
      throw new IllegalStateException(execution.notebook().name() + ": the outputs still name " + machine);
    }
    return text;
  }

  /** Per code cell: "stdout", "display image/png text/plain", "result", in order; stderr left out. */
  static List<List<String>> structure(JsonNode notebook) {
    List<List<String>> cells = new ArrayList<>();
    for (JsonNode cell : notebook.get("cells")) {
      if (!cell.path("cell_type").asText().equals("code")) {
        continue;
      }
      List<String> kinds = new ArrayList<>();
      for (JsonNode o : cell.path("outputs")) {
        String kind = switch (o.path("output_type").asText()) {
          case "stream" -> o.path("name").asText().equals("stderr") ? null : "stdout";
          case "display_data" -> "display " + String.join(" ", mimeTypes(o.path("data")));
          case "execute_result" -> "result";
          default -> "unknown " + o.path("output_type").asText();
        };
        if (kind != null && !(kind.equals("stdout") && !kinds.isEmpty() && kinds.get(kinds.size() - 1).equals(kind))) {
          kinds.add(kind);
        }
      }
      cells.add(kinds);
    }
    return cells;
  }

  private static TreeSet<String> mimeTypes(JsonNode data) {
    TreeSet<String> types = new TreeSet<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = data.fields(); it.hasNext(); ) {
      types.add(it.next().getKey());
    }
    return types;
  }
}
