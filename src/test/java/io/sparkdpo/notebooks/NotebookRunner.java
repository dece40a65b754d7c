package io.sparkdpo.notebooks;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;
import jdk.jshell.VarSnippet;
import jdk.jshell.execution.LocalExecutionControlProvider;

/**
 * Runs a Java notebook the way a JShell-based Jupyter kernel (JJava, IJava) does, without Jupyter: one JShell
 * per notebook, executing in this JVM (JJava's execution control is a DirectExecutionControl too), every code cell
 * in order, each cell split into JShell snippets with {@link SourceCodeAnalysis#analyzeCompletion}, the cell's
 * standard output and error captured. The compiler sees only {@code kernelClasspath} (what the kernel's
 * {@code JJAVA_CLASSPATH} would hold) plus what the notebook's own {@code %classpath} lines add, so a notebook
 * that forgets to put the project on its classpath does not compile here either.
 *
 * <p>Rich output: {@code display(...)} is in scope as in JJava, by a static import of {@link KernelDisplay} when the
 * shell starts; each display becomes a {@code display_data} output of the running cell, in order with the cell's
 * printed text.
 *
 * <p>Magics: {@code %classpath} on a line of its own ({@link ClasspathMagic}). Any other magic, a cell magic
 * ({@code %%...}) or a magic used as a value ({@code x = %classpath ...}) fails the run, naming it, rather than
 * being skipped.
 *
 * <p>Parameters: as papermill does, values for the variables of the cell tagged {@code parameters} are assigned
 * in an extra cell right after it ({@code name = "value";}), so the variables must be declared there.
 *
 * <p>Any compile error, runtime exception, unresolved reference or incomplete statement stops the run with a
 * {@link CellFailure} naming the notebook, the cell, the snippet and the diagnostic.
 */
public final class NotebookRunner {
  static final String PARAMETERS_TAG = "parameters";
  private static final Pattern LINE_MAGIC = Pattern.compile("^\\s*%(?!%)(\\w+)(.*)$");
  private static final Pattern VALUE_MAGIC = Pattern.compile("=\\s*%\\w");

  private final List<Path> kernelClasspath;

  /** @param kernelClasspath the kernel JVM's library classpath (Spark and the project's dependencies) */
  public NotebookRunner(List<Path> kernelClasspath) {
    this.kernelClasspath = List.copyOf(kernelClasspath);
  }

  /**
   * One executed code cell; {@code injected} marks the parameters cell the runner added. {@code outputs} are the
   * cell's printed text and displays in the order they happened (consecutive text of one stream merged, as
   * Jupyter shows it); {@code result} is the value of the cell's last expression, if any.
   */
  public record CellRun(Notebook.Cell cell, boolean injected, String stdout, String stderr, String result,
      List<Output> outputs) {
    public CellRun {
      outputs = List.copyOf(outputs);
    }

    /** The cell's displays, in order. */
    public List<Output.Display> displays() {
      return outputs.stream().filter(o -> o instanceof Output.Display).map(o -> (Output.Display) o).toList();
    }
  }

  /** An output of a cell as nbformat stores it: printed text of one stream, or a display (MIME type to data). */
  public sealed interface Output {
    record Stream(String name, String text) implements Output {}

    record Display(Map<String, String> data) implements Output {
      public Display {
        data = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(data));
      }
    }
  }

  /** A cell that did not run: compile error, exception, unresolved reference, incomplete code or bad magic. */
  public static final class CellFailure extends AssertionError {
    CellFailure(String message) {
      super(message);
    }
  }

  /** The notebook's code cells as run, in order, and the parameters given. */
  public record Execution(Notebook notebook, Map<String, String> parameters, List<CellRun> cells) {
    /** Everything the notebook printed, cell after cell. */
    public String stdout() {
      return cells.stream().map(CellRun::stdout).collect(Collectors.joining());
    }

    /** The standard output of the code cell at {@code index} (its position among all cells). */
    public String stdoutOf(int index) {
      return cells.stream().filter(c -> !c.injected() && c.cell().index() == index).map(CellRun::stdout)
          .findFirst().orElseThrow(() -> new IllegalArgumentException("no code cell " + index));
    }
  }

  /**
   * Runs every code cell of {@code notebook} in order, with {@code workingDir} as the kernel's working directory
   * for {@code %classpath} (Jupyter starts the kernel in the notebook's folder).
   */
  public Execution run(Notebook notebook, Path workingDir, Map<String, String> parameters) {
    List<CellRun> runs = new ArrayList<>();
    Path emptyDir;
    Path runtimeDir;
    try {
      emptyDir = Files.createTempDirectory("notebook-kernel");
      runtimeDir = KernelRuntime.copyTo(Files.createTempDirectory("notebook-kernel-runtime"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    try (KernelStreams streams = new KernelStreams(); JShell shell = startKernel(emptyDir, runtimeDir)) {
      boolean parametersSeen = false;
      for (Notebook.Cell cell : notebook.codeCells()) {
        runs.add(new CellExecution(shell, streams, notebook, cell, workingDir, runs).run(cell.source()));
        if (cell.tags().contains(PARAMETERS_TAG) && !parameters.isEmpty()) {
          parametersSeen = true;
          runs.add(new CellExecution(shell, streams, notebook, cell, workingDir, runs).injected(parameters));
        }
      }
      if (!parameters.isEmpty() && !parametersSeen) {
        throw new CellFailure(notebook.name() + ": parameters " + parameters.keySet()
            + " were given but no code cell is tagged '" + PARAMETERS_TAG + "'");
      }
    } finally {
      KernelDisplay.to(null);
      emptyDir.toFile().delete();
      KernelRuntime.delete(runtimeDir);
    }
    return new Execution(notebook, java.util.Collections.unmodifiableMap(new LinkedHashMap<>(parameters)),
        List.copyOf(runs));
  }

  /**
   * A JShell that sees the kernel classpath and nothing else of this JVM's, as JJava starts one: the kernel JVM's own
   * class path holds only the kernel, and {@code JJAVA_CLASSPATH} is added with {@link JShell#addToClasspath}.
   * JShell's compiler takes its class path from {@code java.class.path}, read when the shell is built (the base
   * every later {@code addToClasspath} extends) and again at its first compilation, so for both the property names
   * an empty folder (the test JVM runs its test classes one at a time; an empty property would mean the working
   * directory). Like JJava's start-up script, a static import then brings the display functions into scope, from
   * {@code runtimeDir} (the kernel's own classes, without the project).
   */
  private JShell startKernel(Path emptyDir, Path runtimeDir) {
    String own = System.getProperty("java.class.path");
    JShell shell = null;
    try {
      System.setProperty("java.class.path", emptyDir.toString());
      shell = JShell.builder().executionEngine(new LocalExecutionControlProvider(), Map.of()).build();
      for (SnippetEvent e : shell.eval("import java.lang.Object;")) {
        shell.drop(e.snippet());
      }
    } catch (RuntimeException e) {
      if (shell != null) {
        shell.close();
      }
      throw e;
    } finally {
      System.setProperty("java.class.path", own);
    }
    shell.addToClasspath(kernelClasspath.stream().map(Path::toString)
        .collect(Collectors.joining(java.io.File.pathSeparator)));
    shell.addToClasspath(runtimeDir.toString());
    for (SnippetEvent e : shell.eval("import static " + KernelDisplay.class.getName() + ".*;")) {
      if (e.status() != Snippet.Status.VALID) {
        List<String> diagnostics = shell.diagnostics(e.snippet()).map(d -> d.getMessage(Locale.ROOT)).toList();
        shell.close();
        throw new IllegalStateException("the kernel's display functions do not compile in the shell: " + diagnostics);
      }
    }
    return shell;
  }

  /** {@code name = "value";} lines, Java string literals escaped. */
  static String assignments(Map<String, String> parameters) {
    StringBuilder b = new StringBuilder();
    new LinkedHashMap<>(parameters).forEach((name, value) -> b.append(name).append(" = \"")
        .append(value.replace("\\", "\\\\").replace("\"", "\\\"")).append("\";\n"));
    return b.toString();
  }

  /** One cell's run: its snippets in order, with standard output and error captured. */
  private static final class CellExecution {
    private final JShell shell;
    private final KernelStreams streams;
    private final Notebook notebook;
    private final Notebook.Cell cell;
    private final Path workingDir;
    private final List<CellRun> before;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private final List<Output> outputs = new ArrayList<>();
    private int outMark;
    private int errMark;
    private String result;
    private boolean injectedCell;

    CellExecution(JShell shell, KernelStreams streams, Notebook notebook, Notebook.Cell cell, Path workingDir,
        List<CellRun> before) {
      this.shell = shell;
      this.streams = streams;
      this.notebook = notebook;
      this.cell = cell;
      this.workingDir = workingDir;
      this.before = before;
    }

    CellRun injected(Map<String, String> parameters) {
      injectedCell = true;
      evalCode(assignments(parameters));
      return finished();
    }

    CellRun run(String source) {
      if (source.stripLeading().startsWith("%%")) {
        fail(source.lines().findFirst().orElse(""), "cell magics are not supported by this runner");
      }
      StringBuilder code = new StringBuilder();
      for (String line : source.split("\n", -1)) {
        Matcher m = LINE_MAGIC.matcher(line);
        if (m.matches()) {
          evalCode(code.toString());
          code.setLength(0);
          lineMagic(line, m.group(1), ClasspathMagic.splitArgs(m.group(2)));
        } else {
          refuseValueMagic(line);
          code.append(line).append('\n');
        }
      }
      evalCode(code.toString());
      return finished();
    }

    private CellRun finished() {
      takeStreams();
      return new CellRun(cell, injectedCell, text(out), text(err), result, outputs);
    }

    /** A display: the text printed so far goes before it. */
    private void display(Map<String, String> data) {
      takeStreams();
      outputs.add(new Output.Display(data));
    }

    /** Moves the text printed since the last call into the outputs, stdout before stderr. */
    private void takeStreams() {
      System.out.flush();
      System.err.flush();
      byte[] o = out.toByteArray();
      byte[] e = err.toByteArray();
      stream("stdout", new String(o, outMark, o.length - outMark, StandardCharsets.UTF_8));
      stream("stderr", new String(e, errMark, e.length - errMark, StandardCharsets.UTF_8));
      outMark = o.length;
      errMark = e.length;
    }

    private void stream(String name, String text) {
      if (text.isEmpty()) {
        return;
      }
      int last = outputs.size() - 1;
      if (last >= 0 && outputs.get(last) instanceof Output.Stream s && s.name().equals(name)) {
        outputs.set(last, new Output.Stream(name, s.text() + text));
      } else {
        outputs.add(new Output.Stream(name, text));
      }
    }

    private void lineMagic(String line, String name, List<String> args) {
      if (!ClasspathMagic.NAME.equals(name)) {
        fail(line, "magic %" + name + " is not supported by this runner (supported: %" + ClasspathMagic.NAME + ")");
      }
      try {
        for (Path p : ClasspathMagic.resolve(args, workingDir)) {
          shell.addToClasspath(p.toString());
        }
      } catch (RuntimeException e) {
        fail(line, e.getMessage());
      }
      result = null;
    }

    /** JJava also expands {@code x = %magic ...}; this runner does not, so it must not pass silently. */
    private void refuseValueMagic(String line) {
      Matcher m = VALUE_MAGIC.matcher(line);
      while (m.find()) {
        long quotes = line.substring(0, m.start()).chars().filter(c -> c == '"').count();
        if (quotes % 2 == 0) {
          fail(line, "a magic used as a value is not supported by this runner");
        }
      }
    }

    private void evalCode(String code) {
      SourceCodeAnalysis analysis = shell.sourceCodeAnalysis();
      String remaining = code;
      while (!remaining.isBlank()) {
        SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(remaining);
        switch (info.completeness()) {
          case EMPTY:
            return;
          case DEFINITELY_INCOMPLETE:
          case CONSIDERED_INCOMPLETE:
            fail(remaining, "the cell ends in the middle of a statement (" + info.completeness() + ")");
            return;
          default:
            eval(info.source());
            remaining = info.remaining();
        }
      }
    }

    private void eval(String snippet) {
      streams.toCell(out, err);
      KernelDisplay.to(this::display);
      List<SnippetEvent> events = shell.eval(snippet);
      System.out.flush();
      System.err.flush();
      result = null;
      for (SnippetEvent event : events) {
        if (event.causeSnippet() != null) {
          refuseLostValue(snippet, event); // a dependent snippet re-evaluated because of this one
          continue;
        }
        check(snippet, event);
        Snippet s = event.snippet();
        boolean expression = s.kind() == Snippet.Kind.EXPRESSION
            || (s instanceof VarSnippet && s.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND);
        result = expression && event.value() != null && !event.value().isEmpty() ? event.value() : null;
      }
    }

    /**
     * When a snippet (an import or a declaration that brings in a name already used) makes JShell recompile an
     * earlier variable, the variable comes back with its default value, or not at all: the notebook would read null
     * further down. Replacing a variable by declaring it again is fine.
     */
    private void refuseLostValue(String snippet, SnippetEvent event) {
      if (event.snippet() instanceof VarSnippet v && event.previousStatus() == Snippet.Status.VALID
          && event.status() != Snippet.Status.OVERWRITTEN && event.status() != Snippet.Status.DROPPED) {
        fail(snippet, "recompiles the variable '" + v.name() + "' (" + v.source().strip().lines().findFirst()
            .orElse("") + "), which loses its value in JShell; declare imports before the variables that use them");
      }
    }

    private void check(String snippet, SnippetEvent event) {
      Snippet s = event.snippet();
      if (event.status() == Snippet.Status.REJECTED) {
        String diags = shell.diagnostics(s).map(d -> diagnostic(snippet, d)).collect(Collectors.joining("\n"));
        fail(snippet, "does not compile:\n" + (diags.isEmpty() ? "(no diagnostic)" : diags));
      }
      if (event.status() == Snippet.Status.RECOVERABLE_DEFINED
          || event.status() == Snippet.Status.RECOVERABLE_NOT_DEFINED) {
        fail(snippet, "refers to undefined names: " + unresolved(s));
      }
      if (event.exception() instanceof UnresolvedReferenceException u) {
        fail(snippet, "calls " + u.getSnippet().source().strip() + ", which refers to undefined names: "
            + unresolved(u.getSnippet()));
      }
      if (event.exception() != null) {
        fail(snippet, "threw " + describe(event.exception()));
      }
    }

    private String unresolved(Snippet s) {
      return s instanceof jdk.jshell.DeclarationSnippet d
          ? shell.unresolvedDependencies(d).collect(Collectors.joining(", ")) : "?";
    }

    private static String diagnostic(String snippet, Diag d) {
      int pos = (int) Math.max(0, Math.min(d.getStartPosition(), snippet.length()));
      int lineStart = snippet.lastIndexOf('\n', pos - 1) + 1;
      int lineEnd = snippet.indexOf('\n', pos);
      String line = snippet.substring(lineStart, lineEnd < 0 ? snippet.length() : lineEnd);
      return "  " + (d.isError() ? "error: " : "warning: ") + d.getMessage(Locale.ROOT) + "\n    " + line + "\n    "
          + " ".repeat(pos - lineStart) + "^";
    }

    /** An exception thrown by notebook code, with its snippet-relative stack and causes. */
    private static String describe(Throwable t) {
      StringBuilder b = new StringBuilder();
      for (Throwable x = t; x != null; x = x.getCause()) {
        String type = x instanceof EvalException ee ? ee.getExceptionClassName() : x.getClass().getName();
        b.append(x == t ? "" : "\ncaused by: ").append(type).append(": ").append(x.getMessage());
        Arrays.stream(x.getStackTrace()).limit(12).forEach(f -> b.append("\n    at ").append(f));
      }
      return b.toString();
    }

    private void fail(String snippet, String what) {
      String printed = before.stream().map(CellRun::stdout).collect(Collectors.joining()) + text(out);
      String tail = printed.length() > 3000 ? "..." + printed.substring(printed.length() - 3000) : printed;
      throw new CellFailure(notebook.name() + ", cell " + cell.index() + " (code cell "
          + (notebook.codeCells().indexOf(cell) + 1) + " of " + notebook.codeCells().size() + "): snippet\n"
          + indent(snippet.strip()) + "\n" + what + "\nstderr of the cell:\n" + indent(text(err))
          + "\noutput so far:\n" + indent(tail));
    }

    private static String indent(String s) {
      return s.lines().map(l -> "  | " + l).collect(Collectors.joining("\n"));
    }

    private static String text(ByteArrayOutputStream b) {
      return b.toString(StandardCharsets.UTF_8);
    }
  }
}
