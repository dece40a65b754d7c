package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point for {@code bin/spark-dpo} and for {@code spark-submit --class io.sparkdpo.cli.Main}. Wiring only:
 * each stage is one subcommand.
 */
@Command(name = "spark-dpo", mixinStandardHelpOptions = true, version = "spark-dpo 0.1.0",
    description = "Direct Preference Optimization for language models on Apache Spark.",
    subcommands = {
        ConfigCommand.class,
        TokenizerCommand.class,
        ClusterCheckCommand.class,
        PrepareCommand.class,
        SftCommand.class,
        TrainCommand.class,
        RewardCommand.class,
        PpoCommand.class,
        ScoreCommand.class,
        BestOfNCommand.class,
        ReferenceCommand.class,
        GenerateCommand.class,
        EvaluateCommand.class,
        ExportCommand.class,
        LogProbsCommand.class,
        PlanMemoryCommand.class,
        PipelineCommand.class,
    })
public final class Main implements Runnable {
  /** Exit code for a configuration or usage error (nothing ran). */
  public static final int EXIT_CONFIG = 2;

  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  public static void main(String[] args) {
    System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
    int code = commandLine().execute(args);
    System.exit(code);
  }

  /** The configured command line; tests call {@code execute} on it without exiting the JVM. */
  public static CommandLine commandLine() {
    CommandLine cli = new CommandLine(new Main());
    cli.setExecutionExceptionHandler((ex, line, parseResult) -> {
      PrintWriter err = line.getErr();
      if (ex instanceof ConfigException) {
        err.println("spark-dpo: " + ex.getMessage());
        err.flush();
        return EXIT_CONFIG;
      }
      err.println("spark-dpo " + line.getCommandName() + " failed: " + describe(ex));
      if (Boolean.getBoolean("spark-dpo.stacktrace") || System.getenv("SPARK_DPO_STACKTRACE") != null) {
        ex.printStackTrace(err);
      } else {
        err.println("(set SPARK_DPO_STACKTRACE=1 for the stack trace)");
      }
      err.flush();
      return 1;
    });
    return cli;
  }

  /** The message chain of an exception, innermost cause last, without repeats. */
  static String describe(Throwable ex) {
    StringBuilder sb = new StringBuilder();
    String last = null;
    for (Throwable t = ex; t != null; t = t.getCause()) {
      String msg = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
      if (last == null || !last.contains(msg)) {
        if (sb.length() > 0) {
          sb.append("\n  caused by: ");
        }
        sb.append(msg);
      }
      last = msg;
      if (t.getCause() == t) {
        break;
      }
    }
    return sb.toString();
  }
}
