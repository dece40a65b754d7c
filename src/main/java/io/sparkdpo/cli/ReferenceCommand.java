package io.sparkdpo.cli;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.inference.ReferenceJob;
import io.sparkdpo.inference.ReferenceManifest;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code spark-dpo reference}: the reference model's log-probs of every prepared pair, computed on executors. */
@Command(name = "reference", mixinStandardHelpOptions = true,
    description = {"Compute the reference model's log-probs of every pair of a prepared folder on Spark",
        "executors (the model loaded once per executor JVM) and write the same shards, same names and",
        "row order, with ref_chosen_logps/ref_rejected_logps and their token counts, plus a manifest",
        "naming the model's and the data's fingerprints. Running it again for the same data and",
        "model reuses the stored result."})
public final class ReferenceCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--data", required = true, paramLabel = "DIR", description = "A prepared folder (spark-dpo prepare).")
  String data;

  @Option(names = "--model", paramLabel = "PATH_OR_URI",
      description = "The reference model: builtin:tiny or a model folder (sets reference.model; default model.path).")
  String model;

  @Option(names = "--output", paramLabel = "DIR", description = "The referenced folder to write (default: DIR-referenced).")
  String output;

  @Option(names = "--device", paramLabel = "DEVICE", description = "cpu | gpu | gpu:N (sets reference.device).")
  String device;

  @Option(names = "--partitions", paramLabel = "N", description = "Scoring tasks (sets reference.partitions).")
  Integer partitions;

  @Override
  public Integer call() {
    List<String> overrides = new ArrayList<>();
    if (model != null) {
      overrides.add("reference.model=" + model);
    }
    if (device != null) {
      overrides.add("reference.device=" + device);
    }
    if (partitions != null) {
      overrides.add("reference.partitions=" + partitions);
    }
    JobConfig cfg = job.load(overrides);
    String out = output != null ? output : ReferenceJob.defaultOutput(data);
    ReferenceJob.Result r = new ReferenceJob(SparkSessions.create(cfg, "reference"), cfg).run(data, out);
    ReferenceManifest.Info info = r.manifest().reference();
    PrintWriter w = spec.commandLine().getOut();
    if (r.upToDate()) {
      w.printf("reference: %s is up to date (same data %s and model %s); reusing the stored log-probs%n",
          r.outputDir(), info.dataFingerprint().substring(0, 16), info.modelFingerprint().substring(0, 16));
    } else {
      w.printf(Locale.ROOT, "reference: %d pairs (%d step tokens) scored by %s (fingerprint %s) in %.1f s, "
          + "%.0f tokens/s%n", info.pairs(), info.stepTokens(), info.model(), info.modelFingerprint().substring(0, 16),
          info.seconds(), info.tokensPerSecond());
      w.printf("model loaded %d time(s) by %d task(s) in %d executor JVM(s); wrote %s%n", info.modelLoads(),
          info.tasks(), info.executors(), r.outputDir());
    }
    w.flush();
    return 0;
  }
}
