package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigException;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.PreparedManifest;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code spark-dpo prepare}: preference data to token-balanced Parquet shards, a quarantine and a manifest. */
@Command(name = "prepare", mixinStandardHelpOptions = true,
    description = {"Read preference pairs (JSONL, JSON arrays, Parquet, Hugging Face dataset folders;",
        "local, file:, hdfs:, s3a:; or table:NAME, a table of the session's catalog),",
        "validate, template, tokenize, split train/eval, and write token-balanced Parquet",
        "shards, a quarantine and DIR/manifest.json. Re-running with the same inputs and",
        "settings on a complete DIR does nothing."})
public final class PrepareCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--input", arity = "1..*", paramLabel = "PATH|table:NAME",
      description = {"Input files or folders (repeatable; folders are read recursively), or table:NAME",
          "for a table of the session's catalog (default: prepare.input)."})
  List<String> inputs = new ArrayList<>();

  @Option(names = "--output", required = true, paramLabel = "DIR", description = "The prepared folder to write.")
  String output;

  @Option(names = "--format", paramLabel = "FORMAT",
      description = "auto | hh-rlhf | trl | ultrafeedback (sets prepare.format; default auto).")
  String format;

  @Override
  public Integer call() {
    List<String> overrides = new ArrayList<>();
    if (format != null) {
      overrides.add("prepare.format=" + format);
    }
    JobConfig cfg = job.load(overrides);
    List<String> in = inputs.isEmpty() ? cfg.prepare().input() : inputs;
    if (in.isEmpty()) {
      throw new ConfigException("prepare needs --input PATH|table:NAME... (or prepare.input in the configuration)");
    }
    // prepare.num_shards 0: one shard per DPO training worker (train.workers).
    PrepareJob.Result r = new PrepareJob(SparkSessions.create(cfg, "prepare"), cfg, cfg.train().workers())
        .run(in, output);
    PrintWriter out = spec.commandLine().getOut();
    PreparedManifest m = r.manifest();
    PreparedManifest.Counts c = m.counts();
    if (r.upToDate()) {
      out.printf("prepare: %s is up to date (same inputs and settings, fingerprint %s); nothing to do%n",
          r.outputDir(), m.fingerprint().substring(0, 16));
    } else {
      PreparedManifest.Split train = m.splits().get(PreparedManifest.TRAIN);
      PreparedManifest.Split eval = m.splits().get(PreparedManifest.EVAL);
      out.printf("prepare: read %d rows: kept %d (train %d, eval %d, %d truncated), quarantined %d%n",
          c.read(), c.kept(), train.rows(), eval.rows(), c.truncated(), c.quarantined());
      c.reasons().forEach((reason, n) -> out.printf("  %-20s %d%n", reason, n));
      out.printf("wrote %d train + %d eval shard(s) (%d + %d tokens) and %s/%s%n", train.shards().size(),
          eval.shards().size(), train.tokens(), eval.tokens(), r.outputDir(), PreparedManifest.FILE);
    }
    out.flush();
    return 0;
  }
}
