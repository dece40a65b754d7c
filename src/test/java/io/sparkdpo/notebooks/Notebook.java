package io.sparkdpo.notebooks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A Jupyter notebook file (nbformat 4) as the runner needs it: its cells in order, each with its type, source
 * and tags, plus the raw JSON so an executed copy keeps everything else. Anything that is not nbformat 4 fails
 * here, naming the file and the cell.
 */
public record Notebook(Path file, ObjectNode json, List<Cell> cells) {
  static final ObjectMapper JSON = new ObjectMapper();

  /**
   * @param index position among all cells, 0-based (what Jupyter shows as the cell's place)
   * @param type {@code code}, {@code markdown} or {@code raw}
   */
  public record Cell(int index, String id, String type, String source, List<String> tags) {
    public boolean isCode() {
      return "code".equals(type);
    }
  }

  public String name() {
    return file.getFileName().toString();
  }

  public List<Cell> codeCells() {
    return cells.stream().filter(Cell::isCode).toList();
  }

  /** The {@code metadata.kernelspec.name} the notebook asks Jupyter for. */
  public String kernelName() {
    return json.path("metadata").path("kernelspec").path("name").asText(null);
  }

  public static Notebook read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": not readable as JSON: " + e.getMessage(), e);
    }
    if (!(root instanceof ObjectNode obj) || root.path("nbformat").asInt(-1) != 4) {
      throw new IllegalArgumentException(file + ": not an nbformat 4 notebook (nbformat "
          + root.path("nbformat") + ")");
    }
    JsonNode cellsNode = root.path("cells");
    if (!cellsNode.isArray()) {
      throw new IllegalArgumentException(file + ": 'cells' must be an array");
    }
    List<Cell> cells = new ArrayList<>();
    for (int i = 0; i < cellsNode.size(); i++) {
      JsonNode c = cellsNode.get(i);
      String type = c.path("cell_type").asText("");
      if (!List.of("code", "markdown", "raw").contains(type)) {
        throw new IllegalArgumentException(file + " cell " + i + ": unknown cell_type '" + type + "'");
      }
      List<String> tags = new ArrayList<>();
      c.path("metadata").path("tags").forEach(t -> tags.add(t.asText()));
      cells.add(new Cell(i, c.path("id").asText(null), type, source(c.get("source"), file, i), List.copyOf(tags)));
    }
    return new Notebook(file, obj, List.copyOf(cells));
  }

  /** nbformat stores a multi-line string either as one string or as a list of lines that keep their newlines. */
  private static String source(JsonNode s, Path file, int cell) {
    if (s == null || s.isNull()) {
      throw new IllegalArgumentException(file + " cell " + cell + ": no 'source'");
    }
    if (s.isTextual()) {
      return s.asText();
    }
    StringBuilder b = new StringBuilder();
    s.forEach(line -> b.append(line.asText()));
    return b.toString();
  }
}
