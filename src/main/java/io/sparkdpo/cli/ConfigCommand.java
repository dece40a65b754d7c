package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** Validates a configuration and prints it, redacted, without starting Spark. */
@Command(name = "config", mixinStandardHelpOptions = true,
    description = "Validate a job configuration and print the effective settings (secrets redacted).")
public final class ConfigCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Override
  public Integer call() {
    JobConfig cfg = job.load(List.of());
    System.out.print(ConfigLoader.toRedactedYaml(cfg));
    return 0;
  }
}
