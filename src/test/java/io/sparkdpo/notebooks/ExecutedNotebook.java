package io.sparkdpo.notebooks;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The notebook with the outputs of a run filled in, as {@code jupyter nbconvert --execute} would save it: stream
 * outputs, the last expression's value as an {@code execute_result}, execution counts, and (as papermill does) the
 * injected parameters as an extra cell tagged {@code injected-parameters}. Open it in Jupyter to see what the test
 * saw.
 */
final class ExecutedNotebook {
  /** As Jupyter saves a notebook: one space per level, {@code "key": value}, non-ASCII kept. */
  static final DefaultPrettyPrinter JUPYTER_STYLE = new JupyterPrinter();

  /**
   * {@code "key": value} and {@code {}}/{@code []} for empty containers. Jackson 2.16's {@code Separators} say the
   * same, but the spark-3.5 build runs on Spark 3.5's Jackson 2.15 (docs/spark-3.5.md).
   */
  private static final class JupyterPrinter extends DefaultPrettyPrinter {
    JupyterPrinter() {
      indentObjectsWith(new DefaultIndenter(" ", "\n"));
      indentArraysWith(new DefaultIndenter(" ", "\n"));
    }

    private JupyterPrinter(JupyterPrinter base) {
      super(base);
    }

    @Override
    public DefaultPrettyPrinter createInstance() {
      return new JupyterPrinter(this);
    }

    @Override
    public void writeObjectFieldValueSeparator(JsonGenerator g) throws IOException {
      g.writeRaw(": ");
    }

    @Override
    public void writeEndObject(JsonGenerator g, int entries) throws IOException {
      if (!_objectIndenter.isInline()) {
        --_nesting;
      }
      if (entries > 0) {
        _objectIndenter.writeIndentation(g, _nesting);
      }
      g.writeRaw('}');
    }

    @Override
    public void writeEndArray(JsonGenerator g, int values) throws IOException {
      if (!_arrayIndenter.isInline()) {
        --_nesting;
      }
      if (values > 0) {
        _arrayIndenter.writeIndentation(g, _nesting);
      }
      g.writeRaw(']');
    }
  }

  private ExecutedNotebook() {}

  /** Writes {@code dir/name}. */
  static Path write(NotebookRunner.Execution execution, Path dir, String name) {
    return write(json(execution, true), dir, name);
  }

  /** Writes {@code json} as Jupyter formats a notebook file to {@code dir/name}. */
  static Path write(ObjectNode json, Path dir, String name) {
    Path file = dir.resolve(name);
    try {
      Files.createDirectories(dir);
      Files.writeString(file, text(json));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  static String text(JsonNode json) {
    try {
      return Notebook.JSON.writer(JUPYTER_STYLE).writeValueAsString(json) + "\n";
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * The executed notebook. With {@code injectedCell} false the parameters the run was given are left out, as if
   * they had been the notebook's defaults (what the outputs saved with a notebook need).
   */
  static ObjectNode json(NotebookRunner.Execution execution, boolean injectedCell) {
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
        if (run.injected() && !injectedCell) {
          continue;
        }
        if (run.injected()) {
          target = cells.addObject();
          target.put("cell_type", "code");
          target.put("id", cell.path("id").asText("cell") + "-injected");
          target.putObject("metadata").putArray("tags").add("injected-parameters");
          target.set("source", lines(NotebookRunner.assignments(execution.parameters())));
        }
        target.put("execution_count", ++count);
        ArrayNode outputs = target.putArray("outputs");
        for (NotebookRunner.Output o : run.outputs()) {
          if (o instanceof NotebookRunner.Output.Stream st) {
            ObjectNode out = outputs.addObject();
            out.put("name", st.name());
            out.put("output_type", "stream");
            out.set("text", lines(st.text()));
          } else if (o instanceof NotebookRunner.Output.Display d) {
            ObjectNode out = outputs.addObject();
            data(out.putObject("data"), d.data());
            out.putObject("metadata");
            out.put("output_type", "display_data");
          }
        }
        if (run.result() != null) {
          ObjectNode r = outputs.addObject();
          r.putObject("data").put("text/plain", run.result());
          r.put("execution_count", count);
          r.putObject("metadata");
          r.put("output_type", "execute_result");
        }
      }
    }
    return json;
  }

  /** Text types as nbformat's multi-line strings, binary ones (base64) as one string, MIME types sorted. */
  private static void data(ObjectNode node, Map<String, String> data) {
    new TreeMap<>(data).forEach((type, value) -> {
      if (type.startsWith("image/") && !type.equals("image/svg+xml")) {
        node.put(type, value);
      } else {
        node.set(type, lines(value));
      }
    });
  }

  /** nbformat's multi-line string: a list of lines that keep their newline. */
  private static ArrayNode lines(String text) {
    ArrayNode a = Notebook.JSON.createArrayNode();
    List<String> parts = List.of(text.split("(?<=\n)"));
    parts.stream().filter(p -> !p.isEmpty()).forEach(a::add);
    return a;
  }
}
