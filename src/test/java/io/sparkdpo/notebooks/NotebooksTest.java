package io.sparkdpo.notebooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.PreparedShardReader;
import io.sparkdpo.eval.EvaluationReport;
import io.sparkdpo.eval.GenerationEval;
import io.sparkdpo.eval.MetricsHistory;
import io.sparkdpo.eval.ReportCharts;
import io.sparkdpo.eval.TrainingRun;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.PayloadWriter;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Executes every notebook under {@code notebooks/}, every code cell in order, through {@link NotebookRunner} on the
 * project's classpath, against prepared folders made by the real {@link PrepareJob} (the TRL sample pairs, alone as
 * in the sample run and with a file of broken rows) and a training run written by the real {@link MetricsLog},
 * {@link CheckpointStore} and {@link EvaluationReport}. The run's numbers are synthetic (a loss falling from log 2,
 * seeded noise); the files and their layout are the real writers'. The executed notebooks land in
 * {@code target/notebooks/} with their outputs.
 *
 * <p>The notebooks are committed with the outputs of the sample run ({@link SavedOutputs}); a fresh execution here
 * must produce outputs of the same structure, cell by cell, and the saved ones must come from the code as it is.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class NotebooksTest {
  private static final String PREPARED_NOTEBOOK = "explore-prepared-data.ipynb";
  private static final String RUN_NOTEBOOK = "explore-training-run.ipynb";
  private static final int STEPS = 60;
  private static final int EVAL_EVERY = 10;
  private static final int SAVE_EVERY = 20;

  @TempDir
  static Path dir;
  static Path prepared;
  static PreparedManifest manifest;
  static Path cleanPrepared;
  static Path finishedRun;
  static Path runningRun;
  static Path report;
  static final Storage storage = Storage.local();
  static final NotebookRunner runner = new NotebookRunner(KernelClasspath.ofThisJvm());

  static Path notebooksDir() {
    return Path.of(System.getProperty("project.basedir", ".")).toAbsolutePath().normalize().resolve("notebooks");
  }

  @BeforeAll
  static void fixtures() throws IOException {
    prepared = dir.resolve("prepared");
    manifest = prepare(prepared);
    cleanPrepared = dir.resolve("clean-prepared");
    Path sample = Path.of(System.getProperty("project.basedir", ".")).resolve("sample-data/preferences/trl-sample.jsonl");
    new PrepareJob(SharedSpark.get(), ConfigLoader.load(null, List.of("prepare.eval_fraction=0.2",
        "prepare.num_shards=2")), 1).run(List.of(sample.toString()), cleanPrepared.toString());
    finishedRun = dir.resolve("run");
    writeRun(finishedRun, true);
    runningRun = dir.resolve("running");
    writeRun(runningRun, false);
    report = dir.resolve("report");
    writeReport(report, finishedRun);
  }

  /** Broken rows, one per reason, next to the 50 TRL sample pairs (one of which is repeated here). */
  static final List<String> BROKEN = List.of(
      "{\"prompt\": \"Say hi.\", \"chosen\": \"Hello!\", \"rejected\": \"Hello!\"}",
      "{\"prompt\": \"Say hi.\", \"chosen\": \"Hello!\"",
      "{\"prompt\": \"Say hi.\", \"chosen\": \"Hello!\"}",
      "[1, 2]",
      "{\"prompt\": \"\", \"chosen\": \"Hello!\", \"rejected\": \"Go away.\"}",
      "{\"prompt\": \"What is two plus two?\", \"chosen\": \"Four.\", \"rejected\": \"Five, obviously.\"}");
  static final Map<String, Long> BROKEN_REASONS = new TreeMap<>(Map.of("identical_responses", 1L,
      "malformed_json", 1L, "missing_field", 1L, "not_an_object", 1L, "empty_prompt", 1L, "duplicate_pair", 1L));

  private static PreparedManifest prepare(Path out) throws IOException {
    Path sample = Path.of(System.getProperty("project.basedir", ".")).resolve("sample-data/preferences/trl-sample.jsonl");
    List<String> lines = new ArrayList<>(BROKEN);
    lines.add(Files.readAllLines(sample).get(0)); // a duplicate_pair
    Path broken = Files.createDirectories(dir.resolve("input")).resolve("broken.jsonl");
    Files.writeString(broken, String.join("\n", lines) + "\n");
    PrepareJob job = new PrepareJob(SharedSpark.get(),
        ConfigLoader.load(null, List.of("prepare.eval_fraction=0.2", "prepare.num_shards=2")), 1);
    PreparedManifest m = job.run(List.of(sample.toString(), broken.toString()), out.toString()).manifest();
    assertEquals(BROKEN_REASONS, m.counts().reasons(), "the fixture quarantines one row per reason");
    assertEquals(57, m.counts().read());
    return m;
  }

  /** A DPO run's metrics as the trainer logs them: TRL names every step, eval lines every EVAL_EVERY steps. */
  private static void writeRun(Path run, boolean finished) {
    Random rnd = new Random(17);
    MetricsLog log = new MetricsLog(storage, run.toString(), Long.MAX_VALUE, () -> 0L);
    CheckpointStore checkpoints = new CheckpointStore(storage, run.toString(), null);
    for (int step = 1; step <= STEPS; step++) {
      double progress = 1 - Math.exp(-step / 20.0);
      double margin = 1.5 * progress + 0.05 * rnd.nextGaussian();
      Map<String, Object> r = new LinkedHashMap<>();
      r.put(MetricNames.STEP, step);
      r.put(MetricNames.EPOCH, step / (double) STEPS);
      r.put(MetricNames.LOSS, Math.log(2) - 0.45 * progress + 0.02 * rnd.nextGaussian());
      r.put(MetricNames.REWARDS_CHOSEN, margin / 2);
      r.put(MetricNames.REWARDS_REJECTED, -margin / 2);
      r.put(MetricNames.REWARDS_MARGINS, margin);
      r.put(MetricNames.REWARDS_ACCURACIES, Math.min(1, 0.5 + 0.45 * progress + 0.05 * rnd.nextGaussian()));
      r.put(MetricNames.GRAD_NORM, 2 - progress + 0.1 * rnd.nextDouble());
      r.put(MetricNames.LEARNING_RATE, 1e-6 * (1 - (step - 1) / (double) STEPS));
      log.log(r);
      if (step % EVAL_EVERY == 0) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put(MetricNames.STEP, step);
        e.put(MetricNames.EVAL + MetricNames.LOSS, Math.log(2) - 0.4 * progress);
        e.put(MetricNames.EVAL + MetricNames.REWARDS_ACCURACIES, 0.5 + 0.4 * progress);
        e.put(MetricNames.EVAL + MetricNames.REWARDS_MARGINS, 1.2 * progress);
        e.put(MetricNames.EVAL + MetricNames.REWARDS_CHOSEN, 0.6 * progress);
        e.put(MetricNames.EVAL + MetricNames.REWARDS_REJECTED, -0.6 * progress);
        log.log(e);
      }
      if (step % SAVE_EVERY == 0) {
        log.flush();
        checkpoints.save(step, Map.of("trainer_state.json", PayloadWriter.json(Map.of("step", step))));
      }
      if (!finished && step == STEPS - 5) {
        log.flush(); // a run still going: its last steps are flushed parts, no metrics.jsonl yet
        return;
      }
    }
    log.close();
  }

  /** The evaluate stage's report for the finished run: 20 prompts x 2 samples, two checkpoints. */
  private static void writeReport(Path out, Path run) {
    Random rnd = new Random(3);
    int prompts = 20;
    int samples = 2;
    GenerationEval.Builder gen = GenerationEval.builder("afinn-111",
        new GenerationEval.Sampling(prompts, samples, 48, 1.0, 0, 1.0, 2024), 0.95, rewards(prompts, samples, 0.0, rnd));
    for (int step : new int[] {40, 60}) {
      double[][][] logps = logps(prompts * samples, 12, 0.001 * step, rnd);
      gen.addPolicy("β=0.1", 0.1, step, rewards(prompts, samples, 0.002 * step, rnd), logps[0], logps[1]);
    }
    List<TrainingRun> runs = List.of(TrainingRun.read(storage, "β=0.1", 0.1, run.resolve("metrics.jsonl").toString()));
    EvaluationReport.write(storage, out.toString(), runs, gen.build());
  }

  private static double[][] rewards(int prompts, int samples, double mean, Random rnd) {
    double[][] r = new double[prompts][samples];
    for (double[] row : r) {
      for (int k = 0; k < samples; k++) {
        row[k] = mean + 0.05 * rnd.nextGaussian();
      }
    }
    return r;
  }

  /** Token log-probs of policy and SFT whose log ratio averages {@code klPerToken}. */
  private static double[][][] logps(int sequences, int tokens, double klPerToken, Random rnd) {
    double[][] policy = new double[sequences][tokens];
    double[][] sft = new double[sequences][tokens];
    for (int s = 0; s < sequences; s++) {
      for (int t = 0; t < tokens; t++) {
        policy[s][t] = -0.5 - 2 * rnd.nextDouble();
        sft[s][t] = policy[s][t] - klPerToken - 0.01 * rnd.nextGaussian();
      }
    }
    return new double[][][] {policy, sft};
  }

  /** Runs a notebook and keeps the executed copy as {@code target/notebooks/<name>}, {@code <name>-<variant>}. */
  private static NotebookRunner.Execution run(String name, String variant, Map<String, String> parameters) {
    Notebook nb = Notebook.read(notebooksDir().resolve(name));
    NotebookRunner.Execution execution = runner.run(nb, notebooksDir(), parameters);
    ExecutedNotebook.write(execution, Path.of(System.getProperty("project.build.directory", "target"))
        .resolve("notebooks"), variant.isEmpty() ? name : name.replace(".ipynb", "-" + variant + ".ipynb"));
    return execution;
  }

  private static void assertPrinted(String output, String expected) {
    assertTrue(output.contains(expected), "expected the notebook to print\n  " + expected + "\nin\n" + output);
  }

  @Test
  void everyNotebookIsAJavaNotebookSavedWithTheSampleRunsOutputsOfItsCurrentCode() throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.list(notebooksDir())) {
      files = s.filter(p -> p.toString().endsWith(".ipynb")).sorted().toList();
    }
    assertEquals(List.of(PREPARED_NOTEBOOK, RUN_NOTEBOOK), files.stream().map(p -> p.getFileName().toString()).toList(),
        "a new notebook needs its fixture and checks here");
    assertEquals(RecordNotebookOutputs.SAMPLE_RUN.keySet(), Set.of(PREPARED_NOTEBOOK, RUN_NOTEBOOK));
    String machine = Path.of(System.getProperty("project.basedir", ".")).toAbsolutePath().normalize().toString();
    for (Path f : files) {
      Notebook nb = Notebook.read(f);
      assertEquals("java", nb.kernelName(), f + ": JJava's kernelspec name");
      assertEquals("java", nb.json().at("/metadata/kernelspec/language").asText(), f.toString());
      assertEquals(4, nb.json().get("nbformat").asInt());
      assertTrue(nb.json().get("nbformat_minor").asInt() >= 5, f + ": nbformat 4.5 has cell ids");
      for (Notebook.Cell c : nb.cells()) {
        assertTrue(c.id() != null && !c.id().isEmpty(), f + " cell " + c.index() + " has no id");
        assertFalse(c.tags().contains("injected-parameters"), f + ": saved with the runner's parameters cell");
      }
      assertTrue(nb.codeCells().get(0).source().contains("%classpath ../target/classes"),
          f + ": the first code cell puts the project on the classpath");
      assertTrue(nb.codeCells().get(1).tags().contains(NotebookRunner.PARAMETERS_TAG), f + ": parameters cell");

      assertEquals(SavedOutputs.digest(nb), nb.json().at("/metadata/" + SavedOutputs.METADATA_KEY + "/"
          + SavedOutputs.DIGEST_KEY).asText(), f + ": the code changed since its outputs were saved; save them "
          + "again: " + SavedOutputs.COMMAND);
      int count = 0;
      int images = 0;
      for (JsonNode cell : nb.json().get("cells")) {
        if (cell.path("cell_type").asText().equals("code")) {
          assertEquals(++count, cell.path("execution_count").asInt(), f + ": every code cell ran, in order");
          for (JsonNode o : cell.path("outputs")) {
            JsonNode png = o.path("data").path("image/png");
            if (!png.isMissingNode()) {
              BufferedImage image = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(png.asText())));
              assertEquals(ReportCharts.WIDTH, image.getWidth(), f + ": a chart");
              assertEquals(ReportCharts.HEIGHT, image.getHeight(), f + ": a chart");
              images++;
            }
          }
        }
      }
      assertTrue(images >= 2, f + ": charts saved inline");
      assertFalse(Files.readString(f).contains(machine), f + ": the saved outputs name this machine's " + machine);
    }
  }

  /** The saved notebook and a fresh execution have outputs of the same kinds, cell by cell. */
  private static void assertSameStructureAsSaved(NotebookRunner.Execution run) {
    JsonNode saved = run.notebook().json();
    assertEquals(SavedOutputs.structure(saved), SavedOutputs.structure(ExecutedNotebook.json(run, false)),
        run.notebook().name() + ": the saved outputs differ in structure from what the notebook prints now; save "
            + "them again: " + SavedOutputs.COMMAND);
  }

  @Test
  void preparedDataNotebookOnASampleLikeFolderPrintsAndDrawsWhatItsSavedOutputsShow() {
    NotebookRunner.Execution run = run(PREPARED_NOTEBOOK, "clean", Map.of("preparedDir", cleanPrepared.toString()));
    assertSameStructureAsSaved(run);
    assertPrinted(run.stdout(), "nothing was quarantined");
    assertEquals(2, run.cells().stream().mapToInt(c -> c.displays().size()).sum(), "a chart per split");
  }

  @Test
  void preparedDataNotebookPrintsTheManifestCountsQuarantineHistogramsAndPairs() {
    NotebookRunner.Execution run = run(PREPARED_NOTEBOOK, "", Map.of("preparedDir", prepared.toString()));
    String out = run.stdout();
    PreparedManifest.Counts c = manifest.counts();

    assertPrinted(out, "fingerprint: " + manifest.fingerprint());
    assertPrinted(out, "tokenizer:   builtin (vocabulary 4096, eos 0, pad 1, bos 0)");
    assertPrinted(out, "inputs (2):");
    assertPrinted(out, String.format("rows read: %d, kept: %d, quarantined: %d (%.1f%% kept); truncated: %d",
        57, 51, 6, 100.0 * 51 / 57, c.truncated()));
    PreparedManifest.Split train = manifest.splits().get(PreparedManifest.TRAIN);
    PreparedManifest.Split eval = manifest.splits().get(PreparedManifest.EVAL);
    assertEquals(51, train.rows() + eval.rows());
    assertPrinted(out, String.format("%-6s %8d %10d %12d %7d", "train", train.rows(), train.tokens(), train.stepTokens(), 2));
    assertPrinted(out, String.format("%-6s %8d %10d %12d %7d", "eval", eval.rows(), eval.tokens(), eval.stepTokens(), 2));
    for (var shard : train.shards()) {
      assertPrinted(out, shard.file() + " ".repeat(26 - shard.file().length()) + String.format(" %6d", shard.rows()));
    }

    BROKEN_REASONS.forEach((reason, n) -> assertPrinted(out, String.format("%-22s %8d", reason, n)));
    assertPrinted(out, "quarantine files: " + manifest.quarantine().size() + ", rows: 6; by reason as in the manifest");
    assertPrinted(out, String.format("%-24s %5d  %-20s", "broken.jsonl", 2, "malformed_json"));
    assertPrinted(out, String.format("%-24s %5d  %-20s", "broken.jsonl", 4, "not_an_object"));

    PreparedManifest.Split evalSplit = eval;
    List<NotebookRunner.Output.Display> charts = run.cells().stream().flatMap(r -> r.displays().stream()).toList();
    assertEquals(2, charts.size(), "one histogram per split");
    for (NotebookRunner.Output.Display chart : charts) {
      assertEquals(Set.of("image/png", "text/plain"), chart.data().keySet());
    }
    long longest = manifest.histograms().get(PreparedManifest.TRAIN).get("sequence_len").max();
    int width = (int) Math.max(1, Math.ceil((longest + 1) / 30.0));
    assertPrinted(out, "train: " + (longest / width + 1) + " bins of " + width + " tokens, " + train.rows()
        + " rows drawn");
    assertPrinted(out, "eval: ");
    assertPrinted(out, " tokens, " + evalSplit.rows() + " rows drawn");

    int totalsMatching = out.split(" matches\n", -1).length - 1;
    assertEquals(8, totalsMatching, "2 splits x 4 lengths agree with the histograms\n" + out);
    assertFalse(out.contains("DIFFERS"), out);
    long longestSequence = manifest.histograms().get(PreparedManifest.TRAIN).get("sequence_len").max();
    assertPrinted(out, String.format("train sequence_len: %d rows, mean %.1f, max %d tokens", train.rows(),
        (double) manifest.histograms().get(PreparedManifest.TRAIN).get("sequence_len").total() / train.rows(),
        longestSequence));

    List<PreparedPair> first = PreparedShardReader.read(storage,
        manifest.shardFiles(prepared.toString(), PreparedManifest.TRAIN).get(0));
    PreparedPair p = first.get(0);
    assertPrinted(out, "pair " + p.pairId().substring(0, 12) + ", " + p.sourceFile().replaceAll(".*/", "") + " row "
        + p.sourceRow());
    assertPrinted(out, "  chosen   (" + p.chosenLen() + " tokens): ");
    assertPrinted(out, "token ids decode to the stored texts in 3 of 3 pairs (first shard: " + first.size() + " pairs)");
  }

  @Test
  void trainingRunNotebookPrintsMetricsCheckpointsAndTheReportsHeadline() throws IOException {
    NotebookRunner.Execution run = run(RUN_NOTEBOOK, "",
        Map.of("runDir", finishedRun.toString(), "reportDir", report.toString()));
    String out = run.stdout();
    MetricsHistory history = MetricsHistory.read(storage, finishedRun.resolve("metrics.jsonl").toString());

    assertPrinted(out, "finished run, read from " + finishedRun.resolve("metrics.jsonl"));
    assertPrinted(out, "training lines: " + STEPS + ", evaluation lines: " + STEPS / EVAL_EVERY + ", last step: " + STEPS);
    double lastLoss = history.last(MetricNames.LOSS).getAsDouble();
    assertPrinted(out, String.format("%6d %23s", STEPS, String.format("%.4f", lastLoss)));
    assertPrinted(out, String.format("%-24s %10s ", "loss",
        String.format("%.4f", history.series(MetricNames.LOSS).values()[0])));
    assertPrinted(out, String.format("%13s %6d", "55-60", 6));
    double evalAccuracy = history.last(MetricNames.EVAL + MetricNames.REWARDS_ACCURACIES).getAsDouble();
    assertPrinted(out, String.format("%6d %23s %23s", STEPS,
        String.format("%.4f", history.last(MetricNames.EVAL + MetricNames.LOSS).getAsDouble()),
        String.format("%.4f", evalAccuracy)));

    assertPrinted(out, "committed checkpoints (steps): [20, 40, 60]");
    assertPrinted(out, "newest valid: step 60, 1 files, checksums verified");

    JsonNode metrics = Json.MAPPER.readTree(Files.readString(report.resolve("metrics.json")));
    JsonNode headline = metrics.get("headline");
    assertPrinted(out, "reward afinn-111, 20 held-out prompts x 2 samples, up to 48 new tokens");
    assertPrinted(out, "headline: β=0.1 (beta 0.1) at step " + headline.get("step").asLong());
    assertPrinted(out, String.format("  win rate vs π_SFT  %.4f [%.4f, %.4f]", headline.get("win_rate").asDouble(),
        headline.get("win_rate_ci_low").asDouble(), headline.get("win_rate_ci_high").asDouble()));
    assertPrinted(out, "  verdict: " + headline.get("verdict").asText());
    assertPrinted(out, String.format("training β=0.1: last step %d, loss %.4f", STEPS, lastLoss));

    assertPrinted(out, "run run: " + STEPS + " training and " + STEPS / EVAL_EVERY + " evaluation lines drawn");
    assertPrinted(out, "2 checkpoints of 1 runs against π_SFT (mean reward ");
    assertPrinted(out, "report.html: " + Files.readString(report.resolve("report.html")).length() + " characters, ");
    List<NotebookRunner.Output.Display> shown = run.cells().stream().flatMap(c -> c.displays().stream()).toList();
    assertEquals(6, shown.size(), "loss, rewards, accuracy, margin, the frontier and the report");
    for (NotebookRunner.Output.Display chart : shown.subList(0, 5)) {
      assertEquals(Set.of("image/png", "text/plain"), chart.data().keySet());
    }
    String frame = shown.get(5).data().get("text/html");
    assertTrue(frame.startsWith("<iframe title=\"evaluation report\" "), frame.substring(0, 80));
    assertTrue(frame.contains("<h1>DPO evaluation report</h1>"), "the report's page in the frame");
    assertTrue(frame.contains("[chart: Reward vs KL frontier, drawn above]"), "its charts left out");
    assertFalse(frame.contains("data:image/png"), "its charts left out");
    assertSameStructureAsSaved(run);
  }

  @Test
  void trainingRunNotebookFollowsARunStillInProgressWithoutAReport() {
    NotebookRunner.Execution run = run(RUN_NOTEBOOK, "in-progress",
        Map.of("runDir", runningRun.toString(), "reportDir", dir.resolve("no-report").toString()));
    String out = run.stdout();
    int last = STEPS - 5;
    assertPrinted(out, "run in progress (no metrics.jsonl yet), read from " + runningRun.resolve("metrics"));
    assertPrinted(out, "training lines: " + last + ", evaluation lines: " + last / EVAL_EVERY + ", last step: " + last);
    assertPrinted(out, "committed checkpoints (steps): [20, 40]");
    assertPrinted(out, "no report at " + dir.resolve("no-report") + " (metrics.json is missing)");
    assertPrinted(out, "no generation.json at " + dir.resolve("no-report"));
    assertPrinted(out, "no report.html at " + dir.resolve("no-report"));
    assertEquals(4, run.cells().stream().mapToInt(c -> c.displays().size()).sum(), "the run's curves so far");
  }
}
