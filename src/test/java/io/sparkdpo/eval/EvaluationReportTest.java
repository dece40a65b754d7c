package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvaluationReportTest {
  @TempDir
  Path dir;

  private final Storage storage = Storage.local();

  /**
   * A synthetic metrics.jsonl: training lines every step (loss falling from log 2 towards {@code floor}, with seeded
   * noise) and eval lines every 25 steps, as the trainer writes them.
   */
  static String metricsLines(int steps, double floor, long seed) {
    Random rnd = new Random(seed);
    StringBuilder b = new StringBuilder();
    for (int step = 1; step <= steps; step++) {
      double progress = 1 - Math.exp(-step / 60.0);
      double loss = Math.log(2) - (Math.log(2) - floor) * progress + 0.04 * rnd.nextGaussian();
      b.append(String.format(Locale.ROOT, "{\"epoch\":%.4f,\"grad_norm\":%.4f,\"learning_rate\":5e-7,"
          + "\"logps/chosen\":-80.1,\"logps/rejected\":-82.3,\"loss\":%.6f,\"rewards/accuracies\":%.3f,"
          + "\"rewards/chosen\":0.1,\"rewards/margins\":%.4f,\"rewards/rejected\":-0.1,\"step\":%d,"
          + "\"tokens_per_second\":1500.0}\n", step / 400.0, 1 + rnd.nextDouble(), loss,
          0.5 + 0.4 * progress, 2 * progress, step));
      double evalProgress = progress * (0.7 - floor);
      if (step % 25 == 0) {
        b.append(String.format(Locale.ROOT, "{\"eval/loss\":%.6f,\"eval/rewards/accuracies\":%.4f,"
            + "\"eval/rewards/chosen\":%.4f,\"eval/rewards/margins\":%.4f,\"eval/rewards/rejected\":%.4f,"
            + "\"step\":%d}\n", loss + 0.03, 0.5 + evalProgress, 0.5 * evalProgress, 4 * evalProgress,
            -3.5 * evalProgress, step));
      }
    }
    return b.toString();
  }

  /** Rewards [prompt][sample] around {@code mean}, seeded. */
  static double[][] rewards(int prompts, int samples, double mean, Random rnd) {
    double[][] r = new double[prompts][samples];
    for (int i = 0; i < prompts; i++) {
      for (int k = 0; k < samples; k++) {
        r[i][k] = mean + 0.08 * rnd.nextGaussian();
      }
    }
    return r;
  }

  /** Per-sequence token log-probs whose log ratio averages {@code klPerToken}. */
  static double[][][] logps(int sequences, int tokens, double klPerToken, Random rnd) {
    double[][] p = new double[sequences][tokens];
    double[][] q = new double[sequences][tokens];
    for (int s = 0; s < sequences; s++) {
      for (int t = 0; t < tokens; t++) {
        p[s][t] = -0.5 - 2 * rnd.nextDouble();
        q[s][t] = p[s][t] - klPerToken - 0.05 * rnd.nextGaussian();
      }
    }
    return new double[][][] {p, q};
  }

  /** Three betas, two checkpoints each, 40 prompts x 2 samples: a miniature of the DPO paper's sweep. */
  static GenerationEval sweep() {
    Random rnd = new Random(7);
    int prompts = 40;
    int samples = 2;
    GenerationEval.Sampling sampling = new GenerationEval.Sampling(prompts, samples, 48, 1.0, 0, 1.0, 2024);
    GenerationEval.Builder b = GenerationEval.builder("afinn-111", sampling, 0.95,
        rewards(prompts, samples, 0.02, rnd));
    double[][] setting = {{0.05, 0.06, 0.10}, {0.1, 0.045, 0.06}, {0.5, 0.02, 0.02}};
    for (double[] s : setting) {
      String label = "β=" + s[0];
      for (int step = 100; step <= 200; step += 100) {
        double scale = step / 200.0;
        double[][][] lp = logps(prompts * samples, 30, s[2] * scale, rnd);
        b.addPolicy(label, s[0], step, rewards(prompts, samples, 0.02 + s[1] * scale, rnd), lp[0], lp[1]);
      }
    }
    b.addExample(new GenerationEval.Example("It was the whale", " that broke the boat and drowned the crew", -0.1,
        "β=0.1", " that brought joy & hope to the <script>brave</script> crew", 0.4));
    return b.build();
  }

  private List<TrainingRun> runs() throws IOException {
    List<TrainingRun> runs = new ArrayList<>();
    double[][] settings = {{0.05, 0.35}, {0.1, 0.45}, {0.5, 0.6}};
    for (int i = 0; i < settings.length; i++) {
      Path file = dir.resolve("run-" + i).resolve("metrics.jsonl");
      Files.createDirectories(file.getParent());
      Files.writeString(file, metricsLines(200, settings[i][1], 11 + i));
      runs.add(TrainingRun.read(storage, "β=" + settings[i][0], settings[i][0], file.toString()));
    }
    return runs;
  }

  @Test
  void writesMetricsChartsAndAPageThatReferencesEveryChart() throws IOException {
    GenerationEval gen = sweep();
    String out = dir.resolve("report").toUri().toString();
    EvaluationReport.Written w = EvaluationReport.write(storage, out, runs(), gen);

    assertEquals(4, w.charts().size());
    for (String file : List.of(EvaluationReport.FRONTIER_PNG, EvaluationReport.LOSS_PNG,
        EvaluationReport.ACCURACIES_PNG, EvaluationReport.MARGINS_PNG)) {
      Path png = dir.resolve("report").resolve(file);
      BufferedImage image = ImageIO.read(png.toFile());
      assertEquals(ReportCharts.WIDTH, image.getWidth(), file);
      assertEquals(ReportCharts.HEIGHT, image.getHeight(), file);
    }

    String html = Files.readString(dir.resolve("report").resolve(EvaluationReport.REPORT_HTML));
    for (String file : List.of("reward-vs-kl.png", "training-loss.png", "eval-accuracies.png", "eval-margins.png")) {
      assertTrue(html.contains("<a href=\"" + file + "\"><img"), file);
    }
    assertEquals(4, html.split("src=\"data:image/png;base64,", -1).length - 1);
    PolicyEval headline = gen.headline().orElseThrow();
    assertTrue(html.contains(ReportHtml.esc(headline.verdict().text())), "headline verdict");
    assertTrue(html.contains("AFINN-111 by Finn Årup Nielsen"));
    assertTrue(html.contains("measured at a sampled KL(π ‖ π<sub>SFT</sub>) of "
        + ReportFormat.num(headline.kl().perToken()) + " nats per token"), "KL of the headline");
    assertTrue(html.contains("joy &amp; hope to the &lt;script&gt;brave&lt;/script&gt; crew"), "escaped example");
    assertFalse(html.contains("<script>"));

    JsonNode metrics = Json.MAPPER.readTree(Files.readString(dir.resolve("report").resolve("metrics.json")));
    double[] sftMeans = PolicyEval.perPromptMeans(rewards(40, 2, 0.02, new Random(7)), "sft");
    double sum = 0;
    for (double m : sftMeans) {
      sum += m;
    }
    assertEquals(sum / 40, metrics.at("/sft/mean_reward").asDouble(), 1e-15);
    assertEquals(gen.sftReward().low(), metrics.at("/sft/mean_reward_ci_low").asDouble(), 0.0);
    assertEquals(6, metrics.get("policies").size());
    assertEquals(headline.label(), metrics.at("/headline/label").asText());
    assertEquals(headline.improvement().mean(), metrics.at("/headline/reward_improvement").asDouble(), 0.0);
    assertEquals(headline.improvement().low(), metrics.at("/headline/reward_improvement_ci_low").asDouble(), 0.0);
    assertEquals(headline.kl().perToken(), metrics.at("/headline/kl_per_token").asDouble(), 0.0);
    assertEquals(headline.winRate().rate(), metrics.at("/headline/win_rate").asDouble(), 0.0);
    assertEquals(headline.verdict().text(), metrics.at("/headline/verdict").asText());
    assertEquals(200, metrics.at("/training/0/last_step").asLong());
    assertEquals(runs().get(0).metrics().last("eval/rewards/accuracies").getAsDouble(),
        metrics.at("/training/0/eval~1rewards~1accuracies").asDouble(), 0.0);
    assertEquals(48, metrics.at("/sampling/max_new_tokens").asInt());

    GenerationEval back = GenerationEval.fromJson(
        Files.readString(dir.resolve("report").resolve(EvaluationReport.GENERATION_JSON)), "generation.json");
    assertEquals(gen, back);
  }

  @Test
  void metricsJsonKeysAreSortedSoTheFileIsReproducible() throws IOException {
    String out = dir.resolve("a").toString();
    EvaluationReport.write(storage, out, runs(), sweep());
    String first = Files.readString(dir.resolve("a").resolve("metrics.json"));
    EvaluationReport.write(storage, dir.resolve("b").toString(), runs(), sweep());
    assertEquals(first, Files.readString(dir.resolve("b").resolve("metrics.json")));
    assertTrue(first.indexOf("\"confidence\"") < first.indexOf("\"headline\"")
        && first.indexOf("\"headline\"") < first.indexOf("\"policies\"")
        && first.indexOf("\"policies\"") < first.indexOf("\"reward\""), first);
  }

  @Test
  void runsWithoutEvalLinesGetOnlyTheLossChart() throws IOException {
    Path file = dir.resolve("metrics.jsonl");
    Files.writeString(file, "{\"step\":1,\"loss\":0.69}\n{\"step\":2,\"loss\":0.6}\n");
    List<TrainingRun> runs = List.of(TrainingRun.read(storage, "β=0.1", 0.1, file.toString()));
    EvaluationReport.Written w = EvaluationReport.write(storage, dir.resolve("out").toString(), runs, sweep());
    assertEquals(List.of("reward-vs-kl.png", "training-loss.png"),
        w.charts().stream().map(p -> p.substring(p.lastIndexOf('/') + 1)).toList());
    String html = Files.readString(dir.resolve("out").resolve("report.html"));
    assertFalse(html.contains("eval-accuracies.png"));
    BufferedImage image = ImageIO.read(new ByteArrayInputStream(Files.readAllBytes(
        dir.resolve("out").resolve("training-loss.png"))));
    assertEquals(ReportCharts.WIDTH, image.getWidth());
  }

  @Test
  void evalSplitScoresMeasuredByTheEvaluationGoToThePageAndToTheirRunsInMetricsJson() throws IOException {
    List<TrainingRun> runs = runs();
    EvalSplitMetrics split = EvalSplitMetrics.of(0.1, 0, true, new double[] {-10, -12}, new double[] {-14, -11},
        new double[] {-11, -12}, new double[] {-12, -12});
    EvaluationReport.write(storage, dir.resolve("split").toString(), runs, sweep(), "file:/data/referenced",
        Map.of(runs.get(1).label(), split));
    String html = Files.readString(dir.resolve("split").resolve("report.html"));
    assertTrue(html.contains("Eval split, measured by this evaluation"), "table heading");
    assertTrue(html.contains("<code>file:/data/referenced</code>"), "names the data");
    assertTrue(html.contains("<td class=\"num\">" + ReportFormat.num(split.margin()) + "</td>"), "margin cell");
    JsonNode metrics = Json.MAPPER.readTree(Files.readString(dir.resolve("split").resolve("metrics.json")));
    assertTrue(metrics.at("/training/0/eval_split").isMissingNode(), "only the scored run has one");
    assertEquals("file:/data/referenced", metrics.at("/training/1/eval_split/data").asText());
    assertEquals(2, metrics.at("/training/1/eval_split/pairs").asInt());
    assertEquals(split.accuracy(), metrics.at("/training/1/eval_split/eval~1rewards~1accuracies").asDouble(), 0.0);
    assertEquals(split.loss(), metrics.at("/training/1/eval_split/eval~1loss").asDouble(), 0.0);

    EvaluationReport.write(storage, dir.resolve("none").toString(), runs, sweep());
    assertFalse(Files.readString(dir.resolve("none").resolve("report.html")).contains("Eval split, measured"));
  }
}
