package io.sparkdpo.notebooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The runner itself: snippets, output capture, parameters, magics, and failures that name where they happened. */
class NotebookRunnerTest {
  @TempDir
  Path dir;

  private final NotebookRunner runner = new NotebookRunner(KernelClasspath.ofThisJvm());

  /** A notebook of {@code (type, source[, tag])} cells. */
  private Notebook notebook(String name, String[]... cells) throws IOException {
    ObjectNode root = Notebook.JSON.createObjectNode();
    ArrayNode array = root.putArray("cells");
    for (String[] c : cells) {
      ObjectNode cell = array.addObject();
      cell.put("cell_type", c[0]);
      ObjectNode metadata = cell.putObject("metadata");
      if (c.length > 2) {
        metadata.putArray("tags").add(c[2]);
      }
      cell.put("source", c[1]);
      if (c[0].equals("code")) {
        cell.putArray("outputs");
        cell.putNull("execution_count");
      }
    }
    root.putObject("metadata").putObject("kernelspec").put("name", "java");
    root.put("nbformat", 4);
    root.put("nbformat_minor", 5);
    Path file = dir.resolve(name);
    Files.writeString(file, root.toString());
    return Notebook.read(file);
  }

  private static String[] code(String source) {
    return new String[] {"code", source};
  }

  private NotebookRunner.CellFailure failure(Notebook nb) {
    return assertThrows(NotebookRunner.CellFailure.class, () -> runner.run(nb, dir, Map.of()));
  }

  @Test
  void runsMultiStatementCellsInOrderAndCapturesEachCellsOutputAndValue() throws IOException {
    Notebook nb = notebook("cells.ipynb",
        new String[] {"markdown", "# not run"},
        code("import java.util.List;\nint a = 2; int b = 3; // two statements on a line\n"
            + "System.out.println(a * b);\nvoid twice(String s) {\n  System.out.println(s);\n  System.out.println(s);\n}\n"),
        code("twice(\"x\");\nSystem.err.println(\"careful\");\nList.of(a, b).size() + a + b"),
        code("String block = \"\"\"\n    text block\n    \"\"\";\nSystem.out.print(block);"));
    NotebookRunner.Execution run = runner.run(nb, dir, Map.of());

    assertEquals(3, run.cells().size());
    assertEquals("6\n", run.stdoutOf(1));
    assertNull(run.cells().get(0).result(), "a method declaration has no value");
    assertEquals("x\nx\n", run.stdoutOf(2));
    assertEquals("careful\n", run.cells().get(1).stderr());
    assertEquals("7", run.cells().get(1).result());
    assertEquals("text block\n", run.stdoutOf(3));
    assertEquals("6\nx\nx\ntext block\n", run.stdout());
  }

  @Test
  void injectsParametersAfterTheTaggedCellAndRefusesThemWithoutOne() throws IOException {
    Notebook nb = notebook("params.ipynb",
        new String[] {"code", "String where = \"default\";\nint unchanged = 1;", NotebookRunner.PARAMETERS_TAG},
        code("System.out.println(where + \" \" + unchanged);"));
    NotebookRunner.Execution run = runner.run(nb, dir, Map.of("where", "C:\\data \"quoted\""));
    assertEquals("C:\\data \"quoted\" 1\n", run.stdoutOf(1));
    assertTrue(run.cells().get(1).injected());
    Path executed = ExecutedNotebook.write(run, dir.resolve("out"), "params.ipynb");
    String json = Files.readString(executed);
    assertTrue(json.contains("\"injected-parameters\""), json);
    assertTrue(json.contains("C:\\\\\\\\data"), json);

    Notebook untagged = notebook("untagged.ipynb", code("String where = \"default\";"));
    NotebookRunner.CellFailure f = assertThrows(NotebookRunner.CellFailure.class,
        () -> runner.run(untagged, dir, Map.of("where", "x")));
    assertTrue(f.getMessage().contains("no code cell is tagged 'parameters'"), f.getMessage());

    Notebook undeclared = notebook("undeclared.ipynb",
        new String[] {"code", "String elsewhere = \"\";", NotebookRunner.PARAMETERS_TAG});
    f = assertThrows(NotebookRunner.CellFailure.class, () -> runner.run(undeclared, dir, Map.of("where", "x")));
    assertTrue(f.getMessage().contains("cannot find symbol"), f.getMessage());
  }

  @Test
  void anExceptionFailsNamingTheNotebookCellSnippetAndException() throws IOException {
    Notebook nb = notebook("throws.ipynb",
        new String[] {"markdown", "intro"},
        code("System.out.println(\"before\");"),
        code("int n = 1;\nif (n > 0) {\n  throw new IllegalStateException(\"no rows in \" + n);\n}\nSystem.out.println(\"after\");"));
    String m = failure(nb).getMessage();
    assertTrue(m.startsWith("throws.ipynb, cell 2 (code cell 2 of 2): snippet\n"), m);
    assertTrue(m.contains("  | if (n > 0) {"), m);
    assertTrue(m.contains("threw java.lang.IllegalStateException: no rows in 1"), m);
    assertTrue(m.contains("output so far:\n  | before"), m);
    assertTrue(!m.contains("after"), m);
  }

  @Test
  void aDeclarationThatRecompilesAnEarlierVariableFailsInsteadOfLeavingItWithoutItsValue() throws IOException {
    Notebook nb = notebook("shadowed.ipynb",
        code("import java.util.List;\nimport javax.swing.plaf.nimbus.State;\n"
            + "List<Thread.State> states = List.of(Thread.State.NEW);"),
        code("class State {}\nSystem.out.println(states.size());"));
    String m = failure(nb).getMessage();
    assertTrue(m.contains("shadowed.ipynb, cell 1"), m);
    assertTrue(m.contains("  | class State {}\nrecompiles the variable 'states' (List<Thread.State> states = "), m);

    NotebookRunner.Execution again = runner.run(notebook("redeclared.ipynb",
        code("int n = 1;"), code("int n = 2;\nSystem.out.println(n);")), dir, Map.of());
    assertEquals("2\n", again.stdoutOf(1), "declaring a variable again replaces it");
  }

  @Test
  void aCompileErrorFailsWithTheDiagnosticAndAnIncompleteCellFails() throws IOException {
    String m = failure(notebook("typo.ipynb", code("int n = 1;\nString s = n.length();"))).getMessage();
    assertTrue(m.contains("typo.ipynb, cell 0"), m);
    assertTrue(m.contains("does not compile:\n  error: int cannot be dereferenced\n    String s = n.length();"), m);

    m = failure(notebook("open.ipynb", code("void f() {\n  System.out.println();\n"))).getMessage();
    assertTrue(m.contains("the cell ends in the middle of a statement"), m);
  }

  @Test
  void theProjectCompilesOnlyOnceTheClasspathMagicAddsIt() throws IOException {
    String m = failure(notebook("bare.ipynb", code("import io.sparkdpo.io.Storage;"))).getMessage();
    assertTrue(m.contains("package io.sparkdpo.io does not exist"), m);
    m = failure(notebook("no-imports.ipynb", code("List.of(1)"))).getMessage();
    assertTrue(m.contains("cannot find symbol\n  symbol:   variable List"), "no implicit imports: " + m);

    Files.createDirectories(dir.resolve("nb"));
    Path classes = KernelClasspath.projectClasses();
    Path relative = dir.resolve("nb").relativize(classes);
    Notebook nb = notebook("with-classes.ipynb",
        code("// the project\n%classpath " + relative + "\nimport io.sparkdpo.io.Storage;\nStorage.join(\"a\", \"b\")"));
    NotebookRunner.Execution run = runner.run(nb, dir.resolve("nb"), Map.of());
    assertEquals("\"a/b\"", run.cells().get(0).result());
  }

  @Test
  void otherMagicsCellMagicsValueMagicsAndAStaleClasspathFail() throws IOException {
    String m = failure(notebook("maven.ipynb", code("%maven org.example:lib:1.0"))).getMessage();
    assertTrue(m.contains("magic %maven is not supported by this runner"), m);
    m = failure(notebook("cell.ipynb", code("%%time\nint x = 1;"))).getMessage();
    assertTrue(m.contains("cell magics are not supported"), m);
    m = failure(notebook("value.ipynb", code("List<String> jars = %classpath lib/*.jar"))).getMessage();
    assertTrue(m.contains("a magic used as a value is not supported"), m);
    m = failure(notebook("stale.ipynb", code("%classpath ../no-such-dir/*.jar"))).getMessage();
    assertTrue(m.contains("%classpath ../no-such-dir/*.jar matches nothing"), m);

    NotebookRunner.Execution run = runner.run(notebook("format.ipynb",
        code("String s = String.format(\"x = %d\", 3);\nSystem.out.println(s);")), dir, Map.of());
    assertEquals("x = 3\n", run.stdoutOf(0), "a % inside a string is not a magic");
  }

  @Test
  void classpathGlobsMatchWithinOneSegmentRelativeToTheWorkingDirectory() throws IOException {
    Path lib = Files.createDirectories(dir.resolve("kernel/lib"));
    for (String f : List.of("b.jar", "a.jar", "notes.txt")) {
      Files.writeString(lib.resolve(f), "");
    }
    Files.createDirectories(dir.resolve("kernel/with space"));
    Path wd = Files.createDirectories(dir.resolve("kernel/notebooks"));
    assertEquals(List.of(lib.resolve("a.jar"), lib.resolve("b.jar"), dir.resolve("kernel/with space")),
        ClasspathMagic.resolve(ClasspathMagic.splitArgs(" ../lib/*.jar  \"../with space\""), wd));
    assertEquals(List.of(lib.resolve("a.jar"), lib.resolve("b.jar")),
        ClasspathMagic.resolve(List.of(lib + "/?.jar"), wd), "absolute");
    assertEquals(List.of(lib.resolve("notes.txt")), ClasspathMagic.resolve(List.of("../*/notes.*"), wd));
  }

  @Test
  void displayIsInScopeAsInJJavaAndItsOutputsKeepTheirPlaceAmongThePrintedText() throws IOException {
    Notebook nb = notebook("display.ipynb",
        code("import java.awt.image.BufferedImage;\n"
            + "System.out.println(\"before\");\n"
            + "BufferedImage img = new BufferedImage(3, 2, BufferedImage.TYPE_INT_RGB);\n"
            + "img.setRGB(1, 1, 0xff0000);\n"
            + "display(img);\n"
            + "System.out.println(\"between\");\n"
            + "display(\"<b>bold</b>\", \"text/html\");\n"
            + "System.out.print(\"after\");"));
    NotebookRunner.Execution run = runner.run(nb, dir, Map.of());
    List<NotebookRunner.Output> outputs = run.cells().get(0).outputs();
    assertEquals(5, outputs.size(), outputs.toString());
    assertEquals(new NotebookRunner.Output.Stream("stdout", "before\n"), outputs.get(0));
    assertEquals(new NotebookRunner.Output.Stream("stdout", "between\n"), outputs.get(2));
    assertEquals(new NotebookRunner.Output.Stream("stdout", "after"), outputs.get(4));
    assertEquals("before\nbetween\nafter", run.stdout(), "printed text without the displays");
    assertNull(run.cells().get(0).result(), "display() as a statement leaves no value");

    Map<String, String> image = ((NotebookRunner.Output.Display) outputs.get(1)).data();
    assertEquals(List.of("image/png", "text/plain"), List.copyOf(image.keySet()));
    java.awt.image.BufferedImage png = javax.imageio.ImageIO.read(
        new java.io.ByteArrayInputStream(java.util.Base64.getDecoder().decode(image.get("image/png"))));
    assertEquals(3, png.getWidth());
    assertEquals(0xff0000, png.getRGB(1, 1) & 0xffffff);
    assertTrue(image.get("text/plain").startsWith("BufferedImage@"), "String.valueOf, as JJava renders it");
    assertEquals(Map.of("text/html", "<b>bold</b>", "text/plain", "<b>bold</b>"),
        ((NotebookRunner.Output.Display) outputs.get(3)).data());

    String json = Files.readString(ExecutedNotebook.write(run, dir.resolve("out"), "display.ipynb"));
    assertTrue(json.contains("\"output_type\": \"display_data\""), json);
    assertTrue(json.contains("\"image/png\": \"iVBOR"), "base64 PNG as one string: " + json);

    String m = failure(notebook("svg-image.ipynb", code("display(new java.awt.image.BufferedImage(1, 1, 1), "
        + "\"image/svg+xml\");"))).getMessage();
    assertTrue(m.contains("this runner renders images as image/png only"), m);
    m = failure(notebook("outside.ipynb", code("display(\"x\", \"application/pdf\");"))).getMessage();
    assertTrue(m.contains("JJava renders text as"), m);
  }
}
