package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelExport;
import io.sparkdpo.inference.ReferenceManifest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole pipeline at tiny sizes through {@code spark-dpo pipeline}, in the test JVM's Spark session: every stage
 * reads what the one before wrote, the report and metrics.json hold numbers, the exported policy reloads with the
 * same log-probs, and a second run skips every stage without rewriting anything. Then {@code evaluate} and
 * {@code export} run alone on the pipeline's folders.
 */
class PipelineTest {
  @TempDir
  Path dir;

  private static Path corpus() {
    return Path.of(System.getProperty("project.basedir", ".")).resolve("sample-data/corpus/moby-dick");
  }

  static List<String> args(Path root) {
    List<String> a = new ArrayList<>(List.of("pipeline"));
    for (String s : List.of(
        "pipeline.output_dir=" + root,
        "pipeline.text=['" + corpus().resolve("train/chapter-001.txt") + "', '"
            + corpus().resolve("train/chapter-002.txt") + "']",
        "pipeline.eval_text=['" + corpus().resolve("heldout/chapter-010.txt") + "']",
        "pipeline.betas=[0.1, 0.5]",
        "sft.max_steps=4", "sft.block_size=32", "sft.per_device_train_batch_size=4", "sft.save_steps=0",
        "sft.learning_rate=1.0e-3",
        "generate.num_prompts=12", "generate.samples_per_prompt=2", "generate.max_new_tokens=8",
        // Minus the length: distinct scores almost always, so few ties at these sizes (AFINN would score most
        // 8-token samples 0).
        "evaluate.reward=io.sparkdpo.eval.LengthPenaltyReward",
        "evaluate.num_prompts=6", "evaluate.samples_per_prompt=2", "evaluate.max_new_tokens=8",
        "prepare.eval_fraction=0.3",
        "train.max_steps=3", "train.per_device_train_batch_size=4", "train.learning_rate=1.0e-3",
        "train.save_steps=1", "train.logging_steps=1")) {
      a.add("--set");
      a.add(s);
    }
    return a;
  }

  @Test
  void runsEveryStageThenSkipsThemAllThenRerunsWhatAChangedSettingAffects() throws IOException {
    Path root = dir.resolve("pipeline");
    PrepareCommandTest.Run first = PrepareCommandTest.run(args(root).toArray(String[]::new));
    assertEquals(0, first.exit(), first.err());
    for (String stage : List.of("sft", "generate", "prepare", "reference", "train β=0.1", "train β=0.5", "evaluate",
        "export")) {
      assertTrue(first.out().contains("pipeline: " + stage + " done in "), stage + " ran:\n" + first.out());
    }
    Storage storage = Storage.local();

    // Handover: generate read pi_SFT; prepare read generate's pairs; reference and both runs used pi_SFT.
    String sftModel = root.resolve("sft/model").toString();
    String sftFingerprint = CausalLM.fingerprintOf(sftModel, storage, 0);
    JsonNode generated = json(root.resolve("generated/manifest.json"));
    assertEquals(sftFingerprint, generated.path("model").path("fingerprint").asText());
    long pairs = generated.path("counts").path("pairs").asLong();
    assertTrue(pairs >= 6, "pairs: " + pairs);
    assertEquals(pairs, Files.readAllLines(root.resolve("generated/pairs.jsonl")).size());
    PreparedManifest prepared = PreparedManifest.read(storage, root.resolve("prepared").toString());
    assertEquals(pairs, prepared.counts().read());
    assertEquals(pairs, prepared.counts().kept());
    ReferenceManifest referenced = ReferenceManifest.read(storage, root.resolve("referenced").toString());
    assertEquals(sftFingerprint, referenced.reference().modelFingerprint());
    for (String beta : List.of("0.1", "0.5")) {
      JsonNode spec = json(root.resolve("dpo-beta-" + beta + "/run.json")).path("spec");
      assertEquals(Double.parseDouble(beta), spec.path("dpo").path("beta").asDouble());
      assertEquals(sftModel, spec.path("model").path("path").asText());
      assertEquals(3, spec.path("total_steps").asLong());
    }
    JsonNode evaluated = json(root.resolve("evaluation/manifest.json"));
    assertEquals(sftFingerprint, evaluated.path("sft").path("fingerprint").asText());
    assertEquals(6, evaluated.path("prompts").path("count").asInt());

    // The report: metrics.json has every run's generation and eval-split numbers.
    for (String f : List.of("report.html", "metrics.json", "reward-vs-kl.png", "training-loss.png")) {
      assertTrue(Files.size(root.resolve("evaluation").resolve(f)) > 100, f);
    }
    JsonNode metrics = json(root.resolve("evaluation/metrics.json"));
    assertEquals("length-penalty", metrics.path("reward").asText());
    assertEquals(2, metrics.path("policies").size());
    for (JsonNode p : metrics.path("policies")) {
      assertEquals(3, p.path("step").asLong());
      assertTrue(p.path("mean_reward").asDouble() < 0, "minus a length: " + p);
      assertTrue(p.path("reward_improvement_ci_low").asDouble() <= p.path("reward_improvement").asDouble());
      assertTrue(p.path("kl_tokens").asLong() > 0);
      assertTrue(Double.isFinite(p.path("kl_per_token").asDouble()));
      assertEquals(6, p.path("wins").asInt() + p.path("ties").asInt() + p.path("losses").asInt());
    }
    assertTrue(Files.readString(root.resolve("evaluation").resolve("report.html"))
        .contains("Eval split, measured by this evaluation"), "report shows evaluate's eval-split scores");
    for (JsonNode r : metrics.path("training")) {
      assertTrue(r.path("eval/loss").isNumber() && r.path("eval/rewards/accuracies").isNumber(), r.toString());
      // evaluate measured the eval split itself (policy log-probs on executors): the trainer's last evaluation of
      // the same model on the same pairs, up to float32 batching differences.
      JsonNode split = r.path("eval_split");
      assertEquals(prepared.splits().get(PreparedManifest.EVAL).rows(), split.path("pairs").asLong(), r.toString());
      assertEquals(r.path("eval/rewards/accuracies").asDouble(), split.path("eval/rewards/accuracies").asDouble(),
          r.toString());
      assertEquals(r.path("eval/loss").asDouble(), split.path("eval/loss").asDouble(), 1e-4, r.toString());
      assertEquals(r.path("eval/rewards/margins").asDouble(), split.path("eval/rewards/margins").asDouble(), 1e-4,
          r.toString());
    }

    // The export is the best run's policy and reloads with the same log-probs.
    Path export = root.resolve("export");
    for (String f : ModelExport.REQUIRED) {
      assertTrue(Files.exists(export.resolve(f)), f);
    }
    assertTrue(Files.exists(export.resolve("model.safetensors")));
    String best = "dpo-beta-" + io.sparkdpo.inference.EvaluateJob.betaText(metrics.path("headline").path("beta")
        .asDouble());
    assertTrue(first.out().contains("exported the policy of " + root.resolve(best)), first.out());
    assertArrayEquals(logProbs(root.resolve(best).resolve("model"), storage), logProbs(export, storage));

    // Second run: every stage up to date, nothing rewritten.
    Map<Path, FileTime> before = modificationTimes(root);
    PrepareCommandTest.Run second = PrepareCommandTest.run(args(root).toArray(String[]::new));
    assertEquals(0, second.exit(), second.err());
    for (String stage : List.of("sft", "generate", "prepare", "reference", "train β=0.1", "train β=0.5", "evaluate",
        "export")) {
      assertTrue(second.out().contains("pipeline: " + stage + " skipped: "), stage + " skipped:\n" + second.out());
    }
    assertTrue(second.out().contains("(8 skipped as up to date)"), second.out());
    Map<Path, FileTime> after = modificationTimes(root);
    after.remove(root.resolve(Pipeline.SUMMARY));
    before.remove(root.resolve(Pipeline.SUMMARY));
    assertEquals(before, after, "no stage rewrote a file");

    // Another DPO learning rate: the runs are cleared and trained again, and everything after them follows.
    List<String> changed = args(root);
    changed.addAll(List.of("--set", "train.learning_rate=5.0e-4"));
    PrepareCommandTest.Run third = PrepareCommandTest.run(changed.toArray(String[]::new));
    assertEquals(0, third.exit(), third.err());
    for (String stage : List.of("sft", "generate", "prepare", "reference")) {
      assertTrue(third.out().contains("pipeline: " + stage + " skipped: "), stage + " skipped:\n" + third.out());
    }
    for (String stage : List.of("train β=0.1", "train β=0.5", "evaluate", "export")) {
      assertTrue(third.out().contains("pipeline: " + stage + " done in "), stage + " ran again:\n" + third.out());
    }
    assertEquals(5.0e-4, json(root.resolve("dpo-beta-0.1/run.json")).path("spec").path("dpo").path("learningRate")
        .asDouble());
    assertEquals(3, Files.readAllLines(root.resolve("dpo-beta-0.1/metrics.jsonl")).stream()
        .filter(l -> l.contains("\"loss\"") && !l.contains("eval/")).count(), "3 fresh steps, not 6");

    // evaluate and export alone, on the pipeline's folders (now with the third run's settings).
    PrepareCommandTest.Run evaluate = PrepareCommandTest.run("evaluate", "--set",
        "evaluate.reward=io.sparkdpo.eval.LengthPenaltyReward", "--set", "evaluate.samples_per_prompt=2", "--set",
        "evaluate.max_new_tokens=8", "--num-prompts", "6", "--run", root.resolve("dpo-beta-0.1").toString(),
        root.resolve("dpo-beta-0.5").toString(), "--prompts", root.resolve("generated/eval_prompts.jsonl").toString(),
        "--data", root.resolve("referenced").toString(), "--output", root.resolve("evaluation").toString());
    assertEquals(0, evaluate.exit(), evaluate.err());
    assertTrue(evaluate.out().contains("is up to date (same models, prompts, metrics and settings)"), evaluate.out());
    assertTrue(evaluate.out().contains("β=0.5: mean -"), evaluate.out());
    // Every checkpoint of both runs (steps 1, 2 and 3) on the reward-KL frontier.
    PrepareCommandTest.Run checkpoints = PrepareCommandTest.run("evaluate", "--set",
        "evaluate.reward=io.sparkdpo.eval.LengthPenaltyReward", "--set", "evaluate.samples_per_prompt=2", "--set",
        "evaluate.max_new_tokens=8", "--set", "evaluate.checkpoints=true", "--num-prompts", "6", "--run",
        root.resolve("dpo-beta-0.1").toString(), root.resolve("dpo-beta-0.5").toString(), "--prompts",
        root.resolve("generated/eval_prompts.jsonl").toString(), "--output", dir.resolve("frontier").toString());
    assertEquals(0, checkpoints.exit(), checkpoints.err());
    JsonNode frontier = json(dir.resolve("frontier/metrics.json"));
    List<String> points = new ArrayList<>();
    frontier.path("policies").forEach(p -> points.add(p.path("beta").asDouble() + "@" + p.path("step").asLong()));
    assertEquals(List.of("0.1@1", "0.1@2", "0.1@3", "0.5@1", "0.5@2", "0.5@3"), points);
    assertEquals(3, frontier.path("headline").path("step").asLong());
    PrepareCommandTest.Run bf16 = PrepareCommandTest.run("export", "--run", root.resolve("dpo-beta-0.5").toString(),
        "--output", dir.resolve("bf16").toString(), "--dtype", "bf16");
    assertEquals(0, bf16.exit(), bf16.err());
    assertTrue(bf16.out().contains("(bfloat16); reloaded"), bf16.out());
    assertTrue(json(dir.resolve("bf16/config.json")).path("torch_dtype").asText().equals("bfloat16"));
  }

  /**
   * pipeline.peft: sft trains an adapter on builtin:tiny, reference and DPO run on base + that adapter, evaluate's
   * pi_SFT is base + adapter, and each run's adapter exports as a PEFT folder or merged.
   */
  @Test
  void withPeftSftWritesAnAdapterThatReferenceAndDpoContinueOnTheBase() throws IOException {
    Path root = dir.resolve("lora-pipeline");
    List<String> a = args(root);
    a.addAll(List.of("--set", "pipeline.betas=[0.1]", "--set", "pipeline.peft.type=lora", "--set",
        "pipeline.peft.r=4", "--set", "sft.learning_rate=1.0e-2", "--set", "train.learning_rate=1.0e-2"));
    PrepareCommandTest.Run run = PrepareCommandTest.run(a.toArray(String[]::new));
    assertEquals(0, run.exit(), run.err());
    Storage storage = Storage.local();
    Path sftAdapter = root.resolve("sft/adapter");
    for (String f : ModelExport.ADAPTER_FILES) {
      assertTrue(Files.exists(sftAdapter.resolve(f)), f);
    }
    assertEquals(4, json(sftAdapter.resolve("adapter_config.json")).path("r").asInt());
    String withAdapter = io.sparkdpo.model.AdapterFolder.withBase(
        CausalLM.fingerprintOf(CausalLM.BUILTIN_TINY, storage, CausalLM.DEFAULT_SEED),
        io.sparkdpo.model.AdapterFolder.fingerprint(storage, sftAdapter.toString()));
    ReferenceManifest referenced = ReferenceManifest.read(storage, root.resolve("referenced").toString());
    assertEquals(withAdapter, referenced.reference().modelFingerprint(), "reference = base + sft adapter");
    assertEquals(sftAdapter.toString(), referenced.reference().adapter());
    Path dpo = root.resolve("dpo-beta-0.1");
    JsonNode spec = json(dpo.resolve("run.json")).path("spec");
    assertEquals(CausalLM.BUILTIN_TINY, spec.path("model").path("path").asText());
    assertEquals(sftAdapter.toString(), spec.path("model").path("adapter").asText());
    assertEquals(4, spec.path("dpo").path("peft").path("r").asInt());
    List<String> lines = Files.readAllLines(dpo.resolve("metrics.jsonl"));
    JsonNode first = Json.MAPPER.readTree(lines.stream().filter(l -> l.contains("\"loss\"") && !l.contains("eval/"))
        .findFirst().orElseThrow());
    // The policy starts at base + sft adapter, the precomputed reference is the same model (batched differently).
    assertEquals(Math.log(2), first.path("loss").asDouble(), 1e-5, first.toString());
    assertTrue(Files.exists(dpo.resolve("adapter/adapter_model.safetensors")));
    assertTrue(Files.exists(dpo.resolve("model/config.json")), "the merged model for generate and evaluate");
    assertEquals(withAdapter, json(root.resolve("evaluation/manifest.json")).path("sft").path("fingerprint").asText(),
        "evaluate's pi_SFT is base + sft adapter");
    assertTrue(Files.exists(root.resolve("export/model.safetensors")));

    PrepareCommandTest.Run peft = PrepareCommandTest.run("export", "--run", dpo.toString(), "--output",
        dir.resolve("lora-export").toString());
    assertEquals(0, peft.exit(), peft.err());
    assertArrayEquals(Files.readAllBytes(dpo.resolve("adapter/adapter_model.safetensors")),
        Files.readAllBytes(dir.resolve("lora-export/adapter_model.safetensors")));
    PrepareCommandTest.Run merged = PrepareCommandTest.run("export", "--run", dpo.toString(), "--merge", "--output",
        dir.resolve("lora-merged").toString());
    assertEquals(0, merged.exit(), merged.err());
    double[] folded = logProbs(dir.resolve("lora-merged"), storage);
    double[] fromRun = logProbs(dpo.resolve("model"), storage);
    for (int i = 0; i < folded.length; i++) {
      assertEquals(fromRun[i], folded[i], 1e-6, "the run's merged model and export --merge agree");
    }
  }

  private static double[] logProbs(Path model, Storage storage) {
    try (CausalLM m = CausalLM.load(model.toString(), storage, CausalLM.device("cpu"))) {
      return ModelExport.sums(m, ModelExport.probes(m.config().vocabSize()));
    }
  }

  private static JsonNode json(Path file) throws IOException {
    return Json.MAPPER.readTree(Files.readAllBytes(file));
  }

  private static Map<Path, FileTime> modificationTimes(Path root) throws IOException {
    Map<Path, FileTime> out = new TreeMap<>();
    try (Stream<Path> files = Files.walk(root)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        out.put(f, Files.getLastModifiedTime(f));
      }
    }
    return out;
  }
}
