package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.distributed.PpoSpec;
import io.sparkdpo.eval.BestOfN;
import io.sparkdpo.eval.BestOfNReport;
import io.sparkdpo.eval.EvaluationReport;
import io.sparkdpo.eval.FrontierPoint;
import io.sparkdpo.eval.FrontierVerdict;
import io.sparkdpo.eval.PolicyEval;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code evaluate} with a PPO run folder next to a DPO one and a best-of-n folder: the PPO policy is sampled and
 * scored like the DPO policy on the same prompts, and the three methods land on one frontier with a verdict.
 * The policies are random built-in models (seeds 1 and 2) against pi_SFT (seed 0): the numbers are not a result,
 * the plumbing is what is checked.
 */
class EvaluateRlhfRunsTest {
  @TempDir
  static Path shared;
  private static Path sft;
  private static Path dpo;
  private static Path ppo;

  @TempDir
  Path dir;

  @BeforeAll
  static void runFolders() throws IOException {
    sft = shared.resolve("sft-model");
    save(0, sft);
    dpo = shared.resolve("dpo-beta-0.1");
    save(1, dpo.resolve("model"));
    Files.writeString(dpo.resolve("run.json"), "{\"spec\": {\"stage\": \"dpo\", \"dpo\": {\"beta\": 0.1}, "
        + "\"model\": {\"path\": \"" + sft + "\"}, \"total_steps\": 2}}");
    Files.writeString(dpo.resolve("metrics.jsonl"), "{\"step\":2,\"loss\":0.6}\n");
    ppo = shared.resolve("ppo-kl-0.05");
    save(2, ppo.resolve("model"));
    Files.writeString(ppo.resolve("run.json"), ppoRunJson(sft.toString(), 0.05));
    Files.writeString(ppo.resolve("metrics.jsonl"), "{\"step\":1,\"objective/scores\":0.1,\"objective/kl\":0.2}\n"
        + "{\"step\":2,\"objective/scores\":0.3,\"objective/kl\":0.9}\n");
  }

  /**
   * The run.json of a finished PPO run with the ground truth as its reward, as {@code spark-dpo ppo} writes it: its
   * {@link PpoSpec} under {@code spec}.
   */
  static String ppoRunJson(String sftModel, double klCoef) {
    JobConfig cfg = ConfigLoader.load(null, List.of("model.path=" + sftModel, "ppo.kl_coef=" + klCoef));
    PpoSpec spec = new PpoSpec(cfg.model(), cfg.ppo(), PpoSpec.ORACLE, "afinn", "oracle:afinn-111", 2, 4, 8,
        List.of("file:/data/prompts.jsonl"));
    return "{\"spec\": " + spec.toJson() + "}";
  }

  private static void save(long seed, Path folder) {
    try (CausalLM m = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), CausalLM.device("cpu"), seed)) {
      m.save(folder.toString(), Storage.local(), DataType.FLOAT32);
    }
  }

  private static JobConfig config() {
    return GenerateJobTest.config(0, "evaluate.num_prompts=4", "evaluate.samples_per_prompt=2",
        "evaluate.max_new_tokens=4");
  }

  private static Path bestOfN(Path root, int prompts) throws IOException {
    Files.createDirectories(root);
    StringBuilder points = new StringBuilder();
    for (int n : new int[] {1, 4}) {
      points.append(points.length() > 0 ? ", " : "").append(String.format(Locale.ROOT, "{\"n\": %d, "
          + "\"reward_mean\": %s, \"reward_low\": -30, \"reward_high\": -10, \"selector_score\": -5, \"kl\": %s, "
          + "\"improvement_mean\": 1, \"improvement_low\": 0.5, \"improvement_high\": 1.5}", n, n == 1 ? -20 : -15,
          BestOfN.klEstimate(n)));
    }
    Files.writeString(root.resolve(BestOfNReport.FILE), String.format(Locale.ROOT, "{\"selector\": "
        + "\"oracle:length-penalty\", \"selector_kind\": \"oracle\", \"reward\": \"length-penalty\", \"confidence\": "
        + "0.95, \"prompts\": %d, \"samples_per_prompt\": 4, \"kl_estimate\": \"analytic: log n - (n-1)/n (not "
        + "measured)\", \"points\": [%s]}", prompts, points));
    return root;
  }

  @Test
  void putsAPpoRunNextToADpoRunAndBestOfNOnOneFrontier() throws IOException {
    Path out = dir.resolve("evaluation");
    Path bon = bestOfN(dir.resolve("best-of-n"), 4);
    EvaluateJob.Result r = new EvaluateJob(SharedSpark.get(), config()).run(List.of(dpo.toString(), ppo.toString()),
        sft.toString(), null, List.of(GenerateJobTest.HELDOUT), bon.toString(), out.toString());

    assertEquals(List.of("dpo", "ppo"), r.runs().stream().map(EvaluateJob.Run::method).toList());
    assertEquals(List.of("β=0.1", "PPO-GT kl_coef=0.05"), r.runs().stream().map(EvaluateJob.Run::label).toList());
    // Both policies sampled on the same 4 prompts as pi_SFT, with their sampled KL.
    List<PolicyEval> finals = r.generation().finalCheckpoints();
    assertEquals(2, finals.size());
    for (PolicyEval p : finals) {
      assertEquals(4, p.reward().n());
      assertEquals(2, p.step());
      assertTrue(p.kl().perSequence().mean() > 0, p.label() + " is another random model: " + p.kl());
    }
    // The frontier: pi_SFT, the DPO and PPO policies at their sampled KL, best-of-1 and -4 at the analytic KL.
    List<String> methods = r.frontier().points().stream().map(FrontierPoint::method).toList();
    assertEquals(List.of("sft", "dpo", "ppo", "best-of-n", "best-of-n"), methods);
    FrontierPoint ppoPoint = r.frontier().points(FrontierPoint.PPO).get(0);
    assertEquals(finals.get(1).reward(), ppoPoint.reward());
    assertEquals(finals.get(1).kl().perSequence().mean(), ppoPoint.kl(), 0.0);
    assertEquals(0.05, ppoPoint.coefficient(), 0.0);
    assertEquals(BestOfN.klEstimate(4), r.frontier().points(FrontierPoint.BEST_OF_N).get(1).kl(), 0.0);
    FrontierVerdict v = r.frontier().verdict();
    assertEquals(1, v.comparisons().size());
    FrontierVerdict.Comparison c = v.comparisons().get(0);
    if (c.dpo() != null) {
      assertTrue(c.paired(), "the same prompts: a paired interval");
    } else {
      assertEquals(FrontierVerdict.Outcome.NO_DPO_POINT, c.outcome());
    }

    JsonNode metrics = Json.MAPPER.readTree(out.resolve(EvaluationReport.METRICS_JSON).toFile());
    assertEquals(v.text(), metrics.at("/frontier/verdict").asText());
    assertEquals(1, metrics.path("training").size(), "the DPO run's training metrics; PPO's are under frontier");
    assertEquals(2, metrics.at("/training/0/last_step").asLong());
    assertEquals(0.9, metrics.at("/frontier/ppo_training/0/objective~1kl").asDouble(), 0.0);
    JsonNode manifest = Json.MAPPER.readTree(out.resolve(EvaluateJob.MANIFEST).toFile());
    assertTrue(manifest.path("files").toString().contains(EvaluationReport.FRONTIER_JSON), manifest.toString());
    assertTrue(Files.size(out.resolve(EvaluationReport.PPO_SCORES_PNG)) > 1000);

    // Up to date: nothing sampled, the same frontier read back.
    EvaluateJob.Result again = new EvaluateJob(SharedSpark.get(), config()).run(List.of(dpo.toString(),
        ppo.toString()), sft.toString(), null, List.of(GenerateJobTest.HELDOUT), bon.toString(), out.toString());
    assertTrue(again.upToDate());
    assertEquals(r.frontier(), again.frontier());
  }

  @Test
  void refusesBestOfNOnAnotherNumberOfPromptsNamingTheFileAndField() throws IOException {
    Path bon = bestOfN(dir.resolve("bon"), 7);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new EvaluateJob(SharedSpark.get(),
        config()).run(List.of(ppo.toString()), sft.toString(), null, List.of(GenerateJobTest.HELDOUT), bon.toString(),
        dir.resolve("out").toString()));
    assertEquals(bon.resolve(BestOfNReport.FILE) + ": field prompts is 7, but the evaluation uses 4 held-out prompts: "
        + "best-of-n must run on the same prompts as the policies (the same prompts file and evaluate.num_prompts)",
        e.getMessage());
  }

  @Test
  void readsTheKlCoefficientAndTheRewardOfAPpoRun() throws IOException {
    JsonNode spec = Json.MAPPER.readTree(ppoRunJson("m", 0.2)).path("spec");
    assertEquals(0.2, EvaluateJob.ppoKlCoef(spec, "run"), 0.0);
    assertTrue(EvaluateJob.ppoOracle(spec));
    assertEquals("PPO kl_coef=0.2", EvaluateJob.ppoLabel(0.2, false));
    JsonNode noCoef = Json.MAPPER.readTree("{\"reward_kind\": \"oracle\", \"ppo\": {}}");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> EvaluateJob.ppoKlCoef(noCoef, "runs/ppo"));
    assertEquals("runs/ppo/run.json: a PPO run without a numeric ppo.kl_coef in its spec", e.getMessage());
  }
}
