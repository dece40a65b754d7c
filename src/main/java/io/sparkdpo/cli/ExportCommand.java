package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigException;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.distributed.TrainingStage;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
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

/**
 * {@code spark-dpo export}: a model or a training run's final model as a Hugging Face folder; a LoRA run's (or a
 * {@code --model} with {@code --adapter}) adapter as a PEFT adapter folder, or with {@code --merge} merged into a
 * Hugging Face folder.
 */
@Command(name = "export", mixinStandardHelpOptions = true,
    description = {"Write a Hugging Face folder (config.json, model.safetensors or shards with",
        "model.safetensors.index.json, generation_config.json, tokenizer.json, tokenizer_config.json) from a",
        "training run (RUN/model) or a model folder, in float32, bfloat16 or float16, reload it and compare its",
        "log-probs with the source's. A LoRA run (RUN/adapter), or --model with --adapter, exports its PEFT adapter",
        "folder (adapter_config.json, adapter_model.safetensors), or with --merge the base with the adapter folded",
        "in as a Hugging Face folder. No Spark involved. The same source, dtype and shard size again: nothing to do."})
public final class ExportCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--run", paramLabel = "DIR", description = "A sft or train run folder: exports DIR/model.")
  String run;

  @Option(names = "--model", paramLabel = "PATH", description = "A model folder or builtin:tiny (instead of --run).")
  String model;

  @Option(names = "--adapter", paramLabel = "DIR",
      description = "A PEFT adapter folder trained on --model: export it (or, with --merge, the merged model).")
  String adapter;

  @Option(names = "--merge", description = "Fold the LoRA adapter into the base and write a Hugging Face folder.")
  boolean merge;

  @Option(names = "--output", required = true, paramLabel = "DIR", description = "The Hugging Face folder to write.")
  String output;

  @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "f32",
      description = "f32 | bf16 | f16 (also float32 | bfloat16 | float16); default f32.")
  String dtype;

  @Option(names = "--max-shard-size", paramLabel = "SIZE", defaultValue = "5GB",
      description = "Largest weight file, as transformers' max_shard_size: bytes, or 500MB, 5GB, 2GiB...; "
          + "default 5GB.")
  String maxShardSize;

  /** A run's run.json {@code spec} (what it trained: stage, model, settings). */
  private JsonNode runSpec(Storage storage) {
    String path = Storage.join(run, TrainingStage.RUN_FILE);
    if (!storage.exists(path)) {
      throw new ConfigException(run + " is not a training run folder: " + TrainingStage.RUN_FILE + " is missing");
    }
    try {
      return Json.MAPPER.readTree(storage.readBytes(path)).path("spec");
    } catch (java.io.IOException e) {
      throw new ConfigException(path + ": not valid JSON: " + e.getMessage());
    }
  }

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
    Storage storage = new Storage(hadoop);
    String base = model;
    String lora = adapter;
    long seed = cfg.model().seed();
    if (run != null && adapter != null) {
      throw new ConfigException("--adapter goes with --model; a LoRA run's adapter is RUN/adapter");
    }
    if (run != null) {
      String runAdapter = Storage.join(run, TrainingStage.ADAPTER);
      if (storage.exists(Storage.join(runAdapter, CausalLM.ADAPTER_CONFIG))) {
        JsonNode started = runSpec(storage).path("model");
        lora = runAdapter;
        base = started.path("path").asText();
        seed = started.path("seed").asLong(seed);
      } else if (merge) {
        throw new ConfigException("--merge: " + run + " is not a LoRA run (it has no " + TrainingStage.ADAPTER
            + "/ folder); its model is exported as it is without --merge");
      }
    }
    if (merge && lora == null) {
      throw new ConfigException("--merge needs a LoRA adapter: --run of a LoRA run, or --model with --adapter");
    }
    if (lora != null && !merge && !type.equals("float32")) {
      throw new ConfigException("--dtype " + dtype + ": an adapter is exported as PEFT saves it (float32); --dtype "
          + "applies to --merge");
    }
    String source = lora != null ? base + " + adapter " + lora
        : run != null ? Storage.join(run, TrainingStage.MODEL) : model;
    ModelExport.Result r = lora == null
        ? ModelExport.export(storage, source, output, type, seed, shardBytes)
        : merge ? ModelExport.exportMerged(storage, base, lora, output, type, seed, shardBytes)
        : ModelExport.exportAdapter(storage, base, lora, output, seed);
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
