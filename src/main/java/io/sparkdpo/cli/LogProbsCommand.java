package io.sparkdpo.cli;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.config.ConfigException;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.S3aSettings;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.SequenceLogProbs;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
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
 * {@code spark-dpo logprobs}: teacher-forced response log-probs of given token sequences under a model, one
 * sequence per forward pass, to check a checkpoint against another implementation (transformers, a reference
 * script) before training on it. No Spark involved.
 */
@Command(name = "logprobs", mixinStandardHelpOptions = true,
    description = {"Score token sequences with a model: for each {prompt_ids, response_ids} of --sequences (a JSON",
        "file with a \"sequences\" array), the log-prob of every response token and their sum, computed as",
        "training and the reference stage compute them. Writes JSON with the same sequences plus sum_logp and",
        "token_logps, the model's fingerprint, dtype and timings."})
public final class LogProbsCommand implements Callable<Integer> {
  @Mixin
  JobOptions job;

  @Spec
  CommandSpec spec;

  @Option(names = "--model", paramLabel = "PATH", description = "A model folder or builtin:tiny (default model.path).")
  String model;

  @Option(names = "--adapter", paramLabel = "DIR",
      description = "A PEFT adapter folder applied to the model (sets model.adapter).")
  String adapter;

  @Option(names = "--dtype", paramLabel = "TYPE",
      description = "auto | float32 | bfloat16 | float16 (default model.dtype): the dtype the weights are held in.")
  String dtype;

  @Option(names = "--sequences", required = true, paramLabel = "FILE",
      description = "JSON: {\"sequences\": [{\"prompt_ids\": [...], \"response_ids\": [...]}, ...]}")
  String sequences;

  @Option(names = "--output", required = true, paramLabel = "FILE", description = "The JSON file to write.")
  String output;

  @Override
  public Integer call() throws IOException {
    List<String> overrides = new ArrayList<>();
    if (model != null) {
      overrides.add("model.path=" + model);
    }
    if (dtype != null) {
      overrides.add("model.dtype=" + dtype);
    }
    if (adapter != null) {
      overrides.add("model.adapter=" + adapter);
    }
    JobConfig cfg = job.load(overrides);
    Configuration hadoop = new Configuration();
    S3aSettings.hadoopProperties(cfg.storage().s3()).forEach(hadoop::set);
    Storage storage = new Storage(hadoop);
    JsonNode input = Json.MAPPER.readTree(storage.readBytes(sequences));
    List<int[]> prompts = new ArrayList<>();
    List<int[]> responses = new ArrayList<>();
    JsonNode rows = input == null ? null : input.get("sequences");
    if (rows == null || !rows.isArray() || rows.isEmpty()) {
      throw new ConfigException(sequences + ": needs a non-empty \"sequences\" array");
    }
    for (int i = 0; i < rows.size(); i++) {
      prompts.add(ids(rows.get(i), "prompt_ids", i));
      responses.add(ids(rows.get(i), "response_ids", i));
    }
    long start = System.nanoTime();
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    try (CausalLM lm = CausalLM.load(cfg.model(), storage)) {
      if (cfg.model().adapter() != null) {
        lm.loadAdapter(cfg.model().adapter(), storage); // base + adapter, as PEFT's PeftModel computes
      }
      double loadSeconds = (System.nanoTime() - start) / 1e9;
      out.put("model", cfg.model().path());
      out.put("model_fingerprint", lm.fingerprint());
      if (cfg.model().adapter() != null) {
        out.put("adapter", cfg.model().adapter());
        out.put("adapter_fingerprint", lm.adapterFingerprint());
      }
      out.put("dtype", lm.dtype().toString().toLowerCase(Locale.ROOT));
      out.put("parameters", lm.numParameters());
      out.put("seconds_load", loadSeconds);
      SequenceLogProbs logProbs = new SequenceLogProbs(lm);
      ArrayNode scored = out.putArray("sequences");
      long forward = System.nanoTime();
      for (int i = 0; i < prompts.size(); i++) {
        try (NDManager scope = NDManager.newBaseManager(lm.device())) {
          List<int[]> p = List.of(prompts.get(i));
          List<int[]> r = List.of(responses.get(i));
          double sum = logProbs.compute(scope, p, r, false).sums()[0];
          double[] tokens = logProbs.tokenLogProbs(scope, p, r)[0];
          ObjectNode row = scored.addObject();
          row.set("prompt_ids", rows.get(i).get("prompt_ids"));
          row.set("response_ids", rows.get(i).get("response_ids"));
          row.put("sum_logp", sum);
          ArrayNode t = row.putArray("token_logps");
          for (double v : tokens) {
            t.add(v);
          }
        }
      }
      out.put("seconds_forward", (System.nanoTime() - forward) / 1e9);
    }
    storage.writeBytes(output, (Json.MAPPER.writeValueAsString(out) + "\n").getBytes(StandardCharsets.UTF_8));
    PrintWriter w = spec.commandLine().getOut();
    w.printf(Locale.ROOT, "logprobs: %d sequence(s) scored by %s (%s) -> %s%n", prompts.size(),
        cfg.model().path(), out.get("dtype").asText(), output);
    w.flush();
    return 0;
  }

  private int[] ids(JsonNode row, String field, int index) {
    JsonNode a = row == null ? null : row.get(field);
    if (a == null || !a.isArray()) {
      throw new ConfigException(sequences + ": sequences[" + index + "]." + field + " must be an array of token ids");
    }
    int[] ids = new int[a.size()];
    for (int j = 0; j < ids.length; j++) {
      if (!a.get(j).canConvertToInt()) {
        throw new ConfigException(sequences + ": sequences[" + index + "]." + field + "[" + j
            + "] is not a token id (got " + a.get(j) + ")");
      }
      ids[j] = a.get(j).asInt();
    }
    return ids;
  }
}
