package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigException;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.dist.TrainingStage;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.ModelExport;
import io.sparkdpo.model.ModelFolder;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code spark-dpo export}: a model or a training run's final model as a Hugging Face folder. */
@Command(name = "export", mixinStandardHelpOptions = true,
    description = {"Write a Hugging Face folder (config.json, model.safetensors or shards with",
        "model.safetensors.index.json, generation_config.json, tokenizer.json, tokenizer_config.json) from a",
        "training run (RUN/model) or a model folder, in float32, bfloat16 or float16, reload it and compare its",
        "log-probs with the source's. No Spark involved. The same source, dtype and shard size again: nothing to do."})
public final class ExportCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--run", paramLabel = "DIR", description = "A sft or train run folder: exports DIR/model.")
  String run;

  @Option(names = "--model", paramLabel = "PATH", description = "A model folder or builtin:tiny (instead of --run).")
  String model;

  @Option(names = "--output", required = true, paramLabel = "DIR", description = "The Hugging Face folder to write.")
  String output;

  @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "f32",
      description = "f32 | bf16 | f16 (also float32 | bfloat16 | float16); default f32.")
  String dtype;

  @Option(names = "--max-shard-size", paramLabel = "SIZE", defaultValue = "5GB",
      description = "Largest weight file, as transformers' max_shard_size: bytes, or 500MB, 5GB, 2GiB...; "
          + "default 5GB.")
  String maxShardSize;

  @Override
  public Integer call() {
    if ((run == null) == (model == null)) {
      throw new ConfigException("export needs exactly one of --run DIR and --model PATH");
    }
    String type = switch (dtype) {
      case "f32", "float32" -> "float32";
      case "bf16", "bfloat16" -> "bfloat16";
      case "f16", "float16", "fp16" -> "float16";
      default -> throw new ConfigException("--dtype must be f32, bf16 or f16 (got " + dtype + ")");
    };
    long shardBytes;
    try {
      shardBytes = ModelFolder.parseSize(maxShardSize);
    } catch (IllegalArgumentException e) {
      throw new ConfigException("--max-shard-size: " + e.getMessage());
    }
    JobConfig cfg = job.load(List.of());
    Configuration hadoop = new Configuration();
    S3aSettings.hadoopProperties(cfg.storage().s3()).forEach(hadoop::set);
    String source = run != null ? Storage.join(run, TrainingStage.MODEL) : model;
    ModelExport.Result r = ModelExport.export(new Storage(hadoop), source, output, type, cfg.model().seed(),
        shardBytes);
    PrintWriter w = spec.commandLine().getOut();
    if (r.upToDate()) {
      w.printf("export: %s is up to date (same source %s, %s); nothing to do%n", output,
          r.manifest().sourceFingerprint().substring(0, 16), type);
    } else {
      w.printf(Locale.ROOT, "export: %s -> %s (%s); reloaded: summed log-probs of %d probe sequences within %.2e "
          + "nats of the source's%n", source, output, type, r.manifest().probeSequences(),
          r.manifest().maxLogProbDifference());
    }
    w.flush();
    return 0;
  }
}
