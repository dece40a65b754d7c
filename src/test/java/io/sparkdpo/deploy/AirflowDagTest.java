package io.sparkdpo.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.cli.Main;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/** Runs deploy/airflow/tests/test_spark_dpo_dag.py (the DAG against a stand-in for Airflow) under Python 3. */
class AirflowDagTest {
  /** Debian's python3 first (the pyenv one on PATH may lack nothing we need, but CI has Debian's). */
  static String python() {
    if (Files.isExecutable(Path.of("/usr/bin/python3"))) {
      return "/usr/bin/python3";
    }
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "python3"))) {
        return Path.of(dir, "python3").toString();
      }
    }
    throw new IllegalStateException("python3 is needed to check deploy/airflow/spark_dpo_dag.py and was not found "
        + "(apt-get install python3)");
  }

  @Test
  @Timeout(value = 90, unit = TimeUnit.SECONDS)
  void dagDeclaresOneSparkSubmitTaskPerStageInDataFlowOrder() throws Exception {
    Path dir = ProcessRun.projectDir();
    ProcessRun r = ProcessRun.run(dir, Map.of("PYTHONDONTWRITEBYTECODE", "1"),
        List.of(python(), dir.resolve("deploy/airflow/tests/test_spark_dpo_dag.py").toString()));
    assertEquals(0, r.exitCode(), r.output());
    Matcher m = Pattern.compile("(?m)^(\\d+) passed, (\\d+) failed$").matcher(r.output());
    assertTrue(m.find(), r.output());
    assertEquals("0", m.group(2), r.output());
    assertTrue(Integer.parseInt(m.group(1)) >= 6, r.output());
  }

  /**
   * Every task's arguments, rendered as Airflow would, parse with the real command line (picocli: known flags,
   * required options, values), for every task.
   */
  @Test
  @Timeout(value = 90, unit = TimeUnit.SECONDS)
  void dagStageArgumentsParseWithTheRealCommands() throws Exception {
    Path dir = ProcessRun.projectDir();
    ProcessRun r = ProcessRun.run(dir, Map.of("PYTHONDONTWRITEBYTECODE", "1"),
        List.of(python(), dir.resolve("deploy/airflow/tests/test_spark_dpo_dag.py").toString(), "--print-args"));
    assertEquals(0, r.exitCode(), r.output());
    JsonNode tasks = new ObjectMapper().readTree(r.output());
    Set<String> checked = new TreeSet<>();
    for (Iterator<String> it = tasks.fieldNames(); it.hasNext(); ) {
      String task = it.next();
      List<String> args = new ArrayList<>();
      tasks.get(task).forEach(a -> args.add(a.asText()));
      CommandLine cli = Main.commandLine();
      try {
        cli.parseArgs(args.toArray(String[]::new));
      } catch (CommandLine.ParameterException e) {
        throw new AssertionError("task " + task + ": " + args + " does not parse: " + e.getMessage(), e);
      }
      checked.add(task);
    }
    assertEquals(Set.of("prepare", "reference", "train", "evaluate", "export"), checked);
  }
}
