package io.sparkdpo.notebooks;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Saves the notebooks with the outputs of the sample run ({@link SavedOutputs}); run on demand, after the pipeline:
 * {@value SavedOutputs#COMMAND}. Each notebook runs with its default folders under {@code runs/pipeline/}, as a
 * kernel started in {@code notebooks/} would resolve them.
 */
@EnabledIfSystemProperty(named = "notebooks.record", matches = "true")
class RecordNotebookOutputs {
  /** The notebooks and the defaults of their parameters cells, relative to the notebooks' folder. */
  static final Map<String, Map<String, String>> SAMPLE_RUN = Map.of(
      "explore-prepared-data.ipynb", Map.of("preparedDir", "../runs/pipeline/prepared"),
      "explore-training-run.ipynb", Map.of("runDir", "../runs/pipeline/dpo-beta-0.5",
          "reportDir", "../runs/pipeline/evaluation"));

  @Test
  void recordsEveryNotebookAgainstTheSampleRun() throws IOException {
    Path notebooks = NotebooksTest.notebooksDir();
    Path project = notebooks.getParent();
    NotebookRunner runner = new NotebookRunner(KernelClasspath.ofThisJvm());
    for (Map.Entry<String, Map<String, String>> e : SAMPLE_RUN.entrySet()) {
      Notebook nb = Notebook.read(notebooks.resolve(e.getKey()));
      Map<String, String> parameters = new LinkedHashMap<>();
      e.getValue().forEach((name, relative) -> {
        assertTrue(nb.cells().stream().anyMatch(c -> c.tags().contains(NotebookRunner.PARAMETERS_TAG)
            && c.source().contains("\"" + relative + "\"")), e.getKey() + ": " + relative + " is not the default");
        Path dir = notebooks.resolve(relative).normalize();
        assertTrue(Files.isDirectory(dir), dir + " is missing: run the pipeline first (" + SavedOutputs.COMMAND + ")");
        parameters.put(name, notebooks + "/" + relative);
      });
      NotebookRunner.Execution run = runner.run(nb, notebooks, parameters);
      Files.writeString(nb.file(), SavedOutputs.record(run, project));
    }
  }
}
