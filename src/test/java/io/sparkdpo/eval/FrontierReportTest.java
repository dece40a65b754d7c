package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The RLHF-vs-DPO report from fixtures: DPO and PPO checkpoints and a best_of_n.json as the best-of-n stage writes it,
 * on one reward-vs-KL chart, in metrics.json, frontier.json and the page.
 */
class FrontierReportTest {
  @TempDir
  Path dir;

  private final Storage storage = Storage.local();

  /** best_of_n.json as the contract of the best-of-n stage has it: n = 1, 4, 16, an oracle selector. */
  static String bestOfNJson(int prompts) {
    StringBuilder pts = new StringBuilder();
    int[] ns = {1, 4, 16};
    double[] means = {0.020, 0.050, 0.070};
    for (int i = 0; i < ns.length; i++) {
      double m = means[i];
      pts.append(i > 0 ? ", " : "").append(String.format(Locale.ROOT, "{\"n\": %d, \"reward_mean\": %.3f, "
          + "\"reward_low\": %.3f, \"reward_high\": %.3f, \"selector_score\": %.3f, \"kl\": %s, "
          + "\"improvement_mean\": %.3f, \"improvement_low\": %.3f, \"improvement_high\": %.3f}", ns[i], m, m - 0.01,
          m + 0.01, 2 * m, BestOfN.klEstimate(ns[i]), m - 0.02, m - 0.025, m - 0.015));
    }
    return String.format(Locale.ROOT, "{\"selector\": \"oracle:afinn-111\", \"selector_kind\": \"oracle\", "
        + "\"reward\": \"afinn-111\", \"confidence\": 0.95, \"prompts\": %d, \"samples_per_prompt\": 16, "
        + "\"kl_estimate\": \"analytic: log n - (n-1)/n (not measured)\", \"points\": [%s]}", prompts, pts);
  }

  /** DPO β=0.1 and PPO kl_coef=0.05, two checkpoints each, 40 prompts x 2 samples, the per-prompt means kept. */
  static GenerationEval sweep(Map<String, double[]> perPrompt) {
    Random rnd = new Random(3);
    int prompts = 40;
    GenerationEval.Sampling sampling = new GenerationEval.Sampling(prompts, 2, 40, 1.0, 0, 1.0, 7);
    GenerationEval.Builder b = GenerationEval.builder("afinn-111", sampling, 0.95,
        EvaluationReportTest.rewards(prompts, 2, 0.02, rnd));
    Object[][] runs = {{"β=0.1", 0.1, 0.06, 0.10}, {"PPO kl_coef=0.05", 0.05, 0.03, 0.15}};
    for (Object[] r : runs) {
      for (int step = 1; step <= 2; step++) {
        double[][] rewards = EvaluationReportTest.rewards(prompts, 2, 0.02 + (double) r[2] * step / 2, rnd);
        double[][][] lp = EvaluationReportTest.logps(prompts * 2, 30, (double) r[3] * step / 2, rnd);
        b.addPolicy((String) r[0], (double) r[1], step, rewards, lp[0], lp[1]);
        perPrompt.put(r[0] + "@" + step, PolicyEval.perPromptMeans(rewards, (String) r[0]));
      }
    }
    return b.build();
  }

  @Test
  void drawsDpoPpoAndBestOfNOnOneFrontierWithATableAndAComputedVerdict() throws IOException {
    Path bon = dir.resolve("best-of-n");
    Files.createDirectories(bon);
    Files.writeString(bon.resolve(BestOfNReport.FILE), bestOfNJson(40));
    BestOfNReport curve = BestOfNReport.read(storage, bon.toString());
    Map<String, double[]> perPrompt = new HashMap<>();
    GenerationEval gen = sweep(perPrompt);
    Frontier f = Frontier.of(gen, List.of(new Frontier.Run("β=0.1", FrontierPoint.DPO, 0.1, "DPO β=0.1"),
        new Frontier.Run("PPO kl_coef=0.05", FrontierPoint.PPO, 0.05, "PPO kl_coef=0.05")), curve, bon.toString(),
        perPrompt);

    // pi_SFT, 2 DPO, 2 PPO and 3 best-of-n points; best-of-n's KL is the formula's, not sampled.
    assertEquals(8, f.points().size());
    assertEquals(List.of(0.0, Math.log(4) - 0.75, Math.log(16) - 15.0 / 16),
        f.points(FrontierPoint.BEST_OF_N).stream().map(FrontierPoint::kl).toList());
    assertTrue(f.points(FrontierPoint.BEST_OF_N).stream().allMatch(FrontierPoint::klAnalytic));
    assertEquals("best-of-16 (oracle)", f.points(FrontierPoint.BEST_OF_N).get(2).name());
    // Each PPO checkpoint is compared with the paired interval of the best DPO point at no more KL.
    assertEquals(2, f.verdict().comparisons().size());
    for (FrontierVerdict.Comparison c : f.verdict().comparisons()) {
      assertTrue(c.paired());
      assertTrue(c.dpo() == null || c.dpo().kl() <= c.ppo().kl(), c.toString());
      if (c.dpo() != null) {
        assertEquals(MeanWithInterval.ofPairedDifferences(perPrompt.get("β=0.1@" + c.dpo().step()),
            perPrompt.get("PPO kl_coef=0.05@" + c.ppo().step()), 0.95), c.difference());
      }
    }

    Path out = dir.resolve("report");
    Path ppoMetrics = dir.resolve("ppo-metrics.jsonl");
    Files.writeString(ppoMetrics, "{\"step\":1,\"objective/scores\":0.1,\"objective/kl\":0.5,\"loss\":0.2}\n"
        + "{\"step\":2,\"objective/scores\":0.3,\"objective/kl\":1.5,\"loss\":0.1}\n");
    EvaluationReport.Written w = EvaluationReport.write(storage, out.toString(),
        List.of(TrainingRun.read(storage, "β=0.1", 0.1, ppoMetrics.toString())), gen, null, Map.of(),
        f, List.of(TrainingRun.read(storage, "PPO kl_coef=0.05", 0.05, ppoMetrics.toString())));
    assertEquals(List.of("reward-vs-kl.png", "training-loss.png", "ppo-scores.png", "ppo-kl.png"),
        w.charts().stream().map(p -> p.substring(p.lastIndexOf('/') + 1)).toList());
    BufferedImage png = ImageIO.read(out.resolve(EvaluationReport.FRONTIER_PNG).toFile());
    assertEquals(ReportCharts.WIDTH, png.getWidth());

    assertEquals(f, Frontier.fromJson(Files.readString(out.resolve(EvaluationReport.FRONTIER_JSON)), "frontier"));
    JsonNode m = Json.MAPPER.readTree(Files.readString(out.resolve(EvaluationReport.METRICS_JSON)));
    assertEquals(f.verdict().text(), m.at("/frontier/verdict").asText());
    assertEquals(f.verdict().overall().name().toLowerCase(Locale.ROOT), m.at("/frontier/outcome").asText());
    assertEquals(8, m.at("/frontier/points").size());
    assertEquals("analytic: log n - (n-1)/n (not measured)", m.at("/frontier/points/7/kl").asText());
    assertEquals(0.07, m.at("/frontier/points/7/mean_reward").asDouble(), 0.0);
    assertEquals("sampled", m.at("/frontier/points/3/kl").asText());
    assertEquals(1.5, m.at("/frontier/ppo_training/0/objective~1kl").asDouble(), 0.0);
    assertEquals("oracle", m.at("/frontier/best_of_n_selector_kind").asText());

    String html = Files.readString(out.resolve(EvaluationReport.REPORT_HTML));
    assertTrue(html.contains("<h2>RLHF vs DPO</h2>"));
    assertTrue(html.contains(ReportHtml.esc(f.verdict().text())));
    assertTrue(html.contains("analytic, not measured"));
    assertTrue(html.contains("Each PPO point against the best DPO point with no more KL"));
    assertTrue(html.contains("paired over prompts"));
  }

  @Test
  void aDpoOnlyReportHasNoComparison() throws IOException {
    Map<String, double[]> perPrompt = new HashMap<>();
    GenerationEval gen = sweep(perPrompt);
    EvaluationReport.write(storage, dir.toString(), List.of(), gen);
    assertFalse(Files.exists(dir.resolve(EvaluationReport.FRONTIER_JSON)));
    assertFalse(Files.readString(dir.resolve(EvaluationReport.REPORT_HTML)).contains("RLHF vs DPO"));
    assertTrue(Json.MAPPER.readTree(Files.readString(dir.resolve(EvaluationReport.METRICS_JSON))).path("frontier")
        .isMissingNode());
  }

  @Test
  void aBestOfNPointWithABadIntervalOrAWrongKlIsRefusedNamingTheFileAndField() throws IOException {
    Files.writeString(dir.resolve(BestOfNReport.FILE), bestOfNJson(40).replace("\"reward_low\": 0.040",
        "\"reward_low\": 0.060"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Frontier.bestOfNPoints(BestOfNReport.read(storage, dir.toString()), dir.toString()));
    assertEquals(dir.resolve(BestOfNReport.FILE) + ": field points[1].reward_low/_mean/_high must be finite with low "
        + "<= mean <= high, got 0.06, 0.05, 0.06", e.getMessage());
    Files.writeString(dir.resolve(BestOfNReport.FILE), bestOfNJson(40).replace("\"kl\": 0.0", "\"kl\": 0.5"));
    e = assertThrows(IllegalArgumentException.class,
        () -> Frontier.bestOfNPoints(BestOfNReport.read(storage, dir.toString()), dir.toString()));
    assertEquals(dir.resolve(BestOfNReport.FILE) + ": field points[0].kl is 0.5, not log n - (n-1)/n for n = 1",
        e.getMessage());
  }

  @Test
  void aBestOfNCurveScoredByAnotherRewardCannotShareTheFrontier() throws IOException {
    Files.writeString(dir.resolve(BestOfNReport.FILE), bestOfNJson(40).replace("\"reward\": \"afinn-111\"",
        "\"reward\": \"length-penalty\""));
    BestOfNReport curve = BestOfNReport.read(storage, dir.toString());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Frontier.of(sweep(new HashMap<>()), List.of(), curve, dir.toString(), Map.of()));
    assertEquals(dir.resolve(BestOfNReport.FILE) + ": field reward is length-penalty, the evaluation's reward is "
        + "afinn-111: one frontier needs one ground-truth reward", e.getMessage());
  }
}
