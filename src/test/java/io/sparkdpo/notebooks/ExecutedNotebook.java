package io.sparkdpo.notebooks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The notebook with the outputs of a run filled in, as {@code jupyter nbconvert --execute} would save it: stream
 * outputs, the last expression's value as an {@code execute_result}, execution counts, and (as papermill does) the
 * injected parameters as an extra cell tagged {@code injected-parameters}. Open it in Jupyter to see what the test
 * saw.
 */
final class ExecutedNotebook {
  private ExecutedNotebook() {}

  /** Writes {@code dir/name}. */
  static Path write(NotebookRunner.Execution execution, Path dir, String name) {
    ObjectNode json = execution.notebook().json().deepCopy();
    ArrayNode cells = json.putArray("cells");
    JsonNode original = execution.notebook().json().get("cells");
    int count = 0;
    for (int i = 0; i < original.size(); i++) {
      ObjectNode cell = original.get(i).deepCopy();
      cells.add(cell);
      for (NotebookRunner.CellRun run : execution.cells()) {
        if (run.cell().index() != i) {
          continue;
        }
        ObjectNode target = cell;
        if (run.injected()) {
          target = cells.addObject();
          target.put("cell_type", "code");
          target.put("id", cell.path("id").asText("cell") + "-injected");
          target.putObject("metadata").putArray("tags").add("injected-parameters");
          target.set("source", lines(NotebookRunner.assignments(execution.parameters())));
        }
        target.put("execution_count", ++count);
        ArrayNode outputs = target.putArray("outputs");
        stream(outputs, "stdout", run.stdout());
        stream(outputs, "stderr", run.stderr());
        if (run.result() != null) {
          ObjectNode r = outputs.addObject();
          r.put("output_type", "execute_result");
          r.put("execution_count", count);
          r.putObject("data").put("text/plain", run.result());
          r.putObject("metadata");
        }
      }
    }
    Path file = dir.resolve(name);
    try {
      Files.createDirectories(dir);
      Files.writeString(file, Notebook.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  private static void stream(ArrayNode outputs, String name, String text) {
    if (!text.isEmpty()) {
      ObjectNode o = outputs.addObject();
      o.put("output_type", "stream");
      o.put("name", name);
      o.set("text", lines(text));
    }
  }

  /** nbformat's multi-line string: a list of lines that keep their newline. */
  private static ArrayNode lines(String text) {
    ArrayNode a = Notebook.JSON.createArrayNode();
    List<String> parts = List.of(text.split("(?<=\n)"));
    parts.stream().filter(p -> !p.isEmpty()).forEach(a::add);
    return a;
  }
}
