package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Option;

/** Options every command shares: the job's YAML file, {@code --set} overrides and the Spark master. */
public final class JobOptions {
  private static final Logger LOG = LoggerFactory.getLogger(JobOptions.class);

  @Option(names = "--config", paramLabel = "FILE", description = "YAML job configuration (see conf/).")
  Path config;

  @Option(names = "--set", paramLabel = "KEY=VALUE",
      description = "Override one configuration key, e.g. --set prepare.max_length=256 (repeatable).")
  List<String> overrides = new ArrayList<>();

  @Option(names = "--master", paramLabel = "URL",
      description = "Spark master (default: the one spark-submit gives, else local[*]).")
  String master;

  /** The {@code --set} overrides, with {@code --master} as {@code spark.master}. */
  List<String> allOverrides() {
    List<String> all = new ArrayList<>(overrides);
    if (master != null) {
      all.add("spark.master=" + master);
    }
    return all;
  }

  /**
   * Loads and validates the configuration, with the command's own flags applied last (they are the most
   * specific), and logs it with secrets redacted.
   */
  public JobConfig load(List<String> commandOverrides) {
    List<String> all = allOverrides();
    all.addAll(commandOverrides);
    JobConfig cfg = ConfigLoader.load(config, all);
    LOG.info("effective configuration{}:\n{}", config == null ? "" : " (" + config + ")",
        ConfigLoader.toRedactedYaml(cfg));
    return cfg;
  }
}
