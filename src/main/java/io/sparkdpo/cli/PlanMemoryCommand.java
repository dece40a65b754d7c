package io.sparkdpo.cli;

import io.sparkdpo.config.ConfigException;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.ModelFolder;
import io.sparkdpo.train.MemoryPlan;
import io.sparkdpo.train.MemoryPlanner;
import io.sparkdpo.train.SessionSpec;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code spark-dpo plan-memory}: the per-worker memory of the configured training, without loading weights. */
@Command(name = "plan-memory", mixinStandardHelpOptions = true,
    description = {"Print what one training worker holds at its peak: weights, gradients, optimizer state, master",
        "weights, reference model, activations (the largest phase of a step), all-reduce buffer, LoRA adapters and",
        "the runtime, for the configured method (train.peft, train.gradient_checkpointing, train.mixed_precision,",
        "train.reference_mode), micro-batch (train.per_device_train_batch_size) and sequence length",
        "(prepare.max_length). --stage reward plans a reward model's step instead (the reward section; a score",
        "head for the LM head, no reference). Reads config.json only. With --device-memory, says whether it fits",
        "and, if not, which settings would. Sizes are in GB (10^9 bytes)."})
public final class PlanMemoryCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--model", paramLabel = "PATH|config.json",
      description = "A model folder (local, hdfs:, s3a:), its config.json, or builtin:tiny; default model.path.")
  String model;

  @Option(names = "--device-memory", paramLabel = "SIZE",
      description = "Memory of one worker's device, e.g. 80GB, 24GiB: check the plan against it.")
  String deviceMemory;

  @Option(names = "--workers", paramLabel = "W", description = "Training workers (default train.workers).")
  Integer workers;

  @Option(names = "--response-length", paramLabel = "N",
      description = "Longest response in tokens (default prepare.max_length - 1, the worst case).")
  Integer responseLength;

  @Option(names = "--json", description = "Print the plan as JSON.")
  boolean json;

  @Option(names = "--stage", paramLabel = "train|reward", defaultValue = "train",
      description = "The training to plan: train (DPO, the train section; default) or reward (spark-dpo reward, "
          + "the reward section).")
  String stage;

  @Override
  public Integer call() throws Exception {
    JobConfig cfg = job.load(List.of());
    SessionSpec.Stage planned = switch (stage) {
      case "train" -> SessionSpec.Stage.DPO;
      case "reward" -> SessionSpec.Stage.REWARD;
      default -> throw new ConfigException("--stage must be train or reward (got " + stage + ")");
    };
    if (workers != null && workers < 1) {
      throw new ConfigException("--workers must be >= 1 (got " + workers + ")");
    }
    int maxLength = cfg.prepare().maxLength();
    if (responseLength != null && (responseLength < 1 || responseLength > maxLength)) {
      throw new ConfigException("--response-length must be in [1, prepare.max_length=" + maxLength + "] (got "
          + responseLength + ")");
    }
    Long device = null;
    if (deviceMemory != null) {
      try {
        device = ModelFolder.parseSize(deviceMemory);
      } catch (IllegalArgumentException e) {
        throw new ConfigException("--device-memory: " + e.getMessage().replace("max shard size", "a size"));
      }
    }
    Configuration hadoop = new Configuration();
    S3aSettings.hadoopProperties(cfg.storage().s3()).forEach(hadoop::set);
    Storage storage = new Storage(hadoop);
    String source = model != null ? model : cfg.model().path();
    ModelConfig config = source.endsWith(".json")
        ? ModelConfig.fromJson(storage.readString(source), source)
        : ModelFolder.configOf(storage, source);
    MemoryPlan plan = MemoryPlanner.plan(MemoryPlanner.jobOf(cfg, config, workers, responseLength, planned));
    List<MemoryPlanner.Suggestion> suggestions = device == null ? List.of()
        : MemoryPlanner.suggestions(plan, device);
    PrintWriter out = spec.commandLine().getOut();
    if (json) {
      out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(
          toJson(source, plan, device, suggestions)));
    } else {
      print(out, source, plan, device, suggestions);
    }
    out.flush();
    return 0;
  }

  private static void print(PrintWriter out, String source, MemoryPlan plan, Long device,
      List<MemoryPlanner.Suggestion> suggestions) {
    MemoryPlanner.Job j = plan.job();
    ModelConfig c = j.model();
    out.printf(Locale.ROOT, "plan-memory: %s (%s), %,d parameters: vocab %d, hidden %d, %d layers, %d/%d heads, "
            + "intermediate %d%n", source, c.architecture(), c.numParameters(), c.vocabSize(), c.hiddenSize(),
        c.numHiddenLayers(), c.numAttentionHeads(), c.numKeyValueHeads(), c.intermediateSize());
    boolean reward = j.stage() == SessionSpec.Stage.REWARD;
    out.printf(Locale.ROOT, "%smethod: %s; mixed_precision %s; gradient_checkpointing %s; reference %s%n",
        reward ? "reward model (score head, Bradley-Terry loss); " : "",
        j.lora() == null ? "full fine-tuning" : "LoRA r=" + j.lora().r() + " on " + String.join(",",
            j.lora().targetModules()) + ", base in " + j.baseDtype(), j.mixedPrecision(), j.gradientCheckpointing(),
        reward ? "none" : j.reference() == MemoryPlanner.Reference.IN_LOOP ? "in the loop" : "precomputed (or none)");
    out.printf(Locale.ROOT, "micro-batch: %d pairs x 2 (chosen, rejected) x %d tokens, %s; "
            + "gradient_accumulation_steps %d; workers %d%n", j.batchSize(), j.sequenceLength(),
        reward ? "each scored at its last token" : "responses up to " + j.responseLength() + " tokens",
        j.gradientAccumulationSteps(), j.workers());
    out.println("per worker:");
    for (MemoryPlan.Item i : plan.items()) {
      out.printf(Locale.ROOT, "  %-18s %9s  %s%n", i.key(), gb(i.bytes()), i.how());
    }
    out.printf(Locale.ROOT, "  %-18s %9s%n", "total", gb(plan.totalBytes()));
    List<String> phases = new ArrayList<>();
    for (MemoryPlan.Phase p : plan.phases()) {
      phases.add(p.name() + " " + gb(p.bytes()));
    }
    out.println("activations by phase (beyond the lasting parts): " + String.join(", ", phases));
    if (device == null) {
      return;
    }
    if (plan.totalBytes() <= device) {
      out.printf(Locale.ROOT, "fits in %s GB (%s GB to spare)%n", gb(device), gb(device - plan.totalBytes()));
      return;
    }
    boolean any = suggestions.stream().anyMatch(s -> s.plan().totalBytes() <= device);
    out.printf(Locale.ROOT, "does NOT fit in %s GB (needs %s GB). %s%n", gb(device), gb(plan.totalBytes()),
        any ? "These settings would fit:" : "Nothing tried fits; the smallest:");
    for (MemoryPlanner.Suggestion s : suggestions) {
      out.printf(Locale.ROOT, "  %s: %s GB%n", s.change(), gb(s.plan().totalBytes()));
    }
  }

  private static Map<String, Object> toJson(String source, MemoryPlan plan, Long device,
      List<MemoryPlanner.Suggestion> suggestions) {
    MemoryPlanner.Job j = plan.job();
    Map<String, Object> root = new LinkedHashMap<>();
    root.put("model", source);
    root.put("stage", j.stage() == SessionSpec.Stage.REWARD ? "reward" : "train");
    root.put("parameters", j.model().numParameters());
    Map<String, Object> settings = new LinkedHashMap<>();
    settings.put("method", j.lora() == null ? "full" : "lora");
    if (j.lora() != null) {
      settings.put("lora_r", j.lora().r());
      settings.put("lora_target_modules", j.lora().targetModules());
      settings.put("lora_modules_to_save", j.lora().modulesToSave());
    }
    settings.put("base_dtype", j.baseDtype());
    settings.put("mixed_precision", j.mixedPrecision());
    settings.put("gradient_checkpointing", j.gradientCheckpointing());
    settings.put("reference", j.reference() == MemoryPlanner.Reference.IN_LOOP ? "in_loop" : "none");
    settings.put("reference_dtype", j.referenceDtype());
    settings.put("per_device_train_batch_size", j.batchSize());
    settings.put("gradient_accumulation_steps", j.gradientAccumulationSteps());
    settings.put("sequence_length", j.sequenceLength());
    settings.put("response_length", j.responseLength());
    settings.put("workers", j.workers());
    root.put("settings", settings);
    List<Map<String, Object>> items = new ArrayList<>();
    for (MemoryPlan.Item i : plan.items()) {
      items.add(Map.of("key", i.key(), "bytes", i.bytes(), "how", i.how()));
    }
    root.put("items", items);
    List<Map<String, Object>> phases = new ArrayList<>();
    for (MemoryPlan.Phase p : plan.phases()) {
      phases.add(Map.of("name", p.name(), "bytes", p.bytes()));
    }
    root.put("phases", phases);
    root.put("peak_phase", plan.peakPhase());
    root.put("total_bytes", plan.totalBytes());
    if (device != null) {
      root.put("device_memory_bytes", device);
      root.put("fits", plan.totalBytes() <= device);
      List<Map<String, Object>> s = new ArrayList<>();
      for (MemoryPlanner.Suggestion sg : suggestions) {
        s.add(Map.of("change", sg.change(), "total_bytes", sg.plan().totalBytes(),
            "fits", sg.plan().totalBytes() <= device));
      }
      root.put("suggestions", s);
    }
    return root;
  }

  private static String gb(long bytes) {
    return String.format(Locale.ROOT, "%.2f", bytes / 1e9);
  }
}
