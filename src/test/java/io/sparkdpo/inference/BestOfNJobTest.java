package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.eval.BestOfN;
import io.sparkdpo.eval.BestOfNReport;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.testing.SharedSpark;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BestOfNJobTest {
  @TempDir
  Path dir;

  static JobConfig config(long seed, String... overrides) {
    List<String> all = new ArrayList<>(List.of("model.path=builtin:tiny", "model.seed=" + seed,
        "evaluate.num_prompts=6", "evaluate.max_new_tokens=8", "evaluate.reward=" + GenerateJobTest.LENGTH_REWARD,
        "score.best_of_n=[1, 2, 4]", "generate.prompts_per_batch=2"));
    all.addAll(List.of(overrides));
    return ConfigLoader.load(null, all);
  }

  BestOfNJob.Result run(JobConfig cfg, String out) {
    return new BestOfNJob(SharedSpark.get(), cfg).run(List.of(GenerateJobTest.HELDOUT), dir.resolve(out).toString());
  }

  /** [prompt][sample] of a column of OUT/samples, in prompt then sample order. */
  double[][] pool(String out, String column) {
    List<Row> rows = SharedSpark.get().read().parquet(dir.resolve(out).resolve(BestOfNJob.SAMPLES).toString())
        .orderBy("prompt_index", "sample").collectAsList();
    double[][] v = new double[rows.size() / 4][4];
    for (int i = 0; i < rows.size(); i++) {
      v[i / 4][i % 4] = rows.get(i).getDouble(rows.get(i).fieldIndex(column));
    }
    return v;
  }

  @Test
  void anOracleSelectorIsNonDecreasingInNAndMatchesBestOfNOnTheSamePool() throws Exception {
    long seed = ReferenceFixtures.freshSeed();
    BestOfNJob.Result r = run(config(seed, "generate.partitions=1"), "oracle");
    BestOfNReport report = r.report();
    assertEquals("oracle:length-penalty", report.selector());
    assertEquals("oracle", report.selectorKind());
    assertEquals(BestOfNReport.KL_ESTIMATE, report.klEstimate());
    assertEquals(6, report.prompts());
    assertEquals(4, report.samplesPerPrompt());
    double[][] reward = pool("oracle", "reward");
    assertArrayEquals(reward, pool("oracle", "selector_score"), "the oracle selects by the ground truth");
    assertEquals(List.of(1, 2, 4), report.points().stream().map(BestOfNReport.Point::n).toList());
    double previous = Double.NEGATIVE_INFINITY;
    for (BestOfNReport.Point p : report.points()) {
      BestOfN.Result expected = BestOfN.evaluate(reward, reward, p.n(), 0.95);
      assertEquals(expected.reward().mean(), p.rewardMean(), 1e-12);
      assertEquals(expected.reward().low(), p.rewardLow(), 1e-12);
      assertEquals(expected.selectorScore(), p.selectorScore(), 1e-12);
      assertEquals(Math.log(p.n()) - (p.n() - 1.0) / p.n(), p.kl(), 1e-12);
      assertTrue(p.selectorScore() >= previous, "selector score non-decreasing in n: " + report.points());
      previous = p.selectorScore();
    }
    // Improvement: against each prompt's mean over the whole pool; best-of-1 is sample 0 against that mean.
    double d = 0;
    for (double[] row : reward) {
      d += row[0] - (row[0] + row[1] + row[2] + row[3]) / 4;
    }
    assertEquals(d / reward.length, report.points().get(0).improvementMean(), 1e-12);
    assertTrue(report.points().get(2).rewardMean() > report.points().get(0).rewardMean(),
        "random continuations differ in length, so best-of-4 beats best-of-1: " + report.points());
    assertTrue(report.points().get(2).improvementLow() > 0, report.points().toString());

    // Another partitioning gives the same pool and result; the same inputs again are up to date.
    BestOfNJob.Result two = run(config(seed, "generate.partitions=3"), "two");
    assertEquals(report, two.report());
    assertTrue(run(config(seed, "generate.partitions=3"), "oracle").upToDate());
    assertTrue(Files.exists(dir.resolve("oracle").resolve(BestOfNJob.MANIFEST)));
  }

  @Test
  void aRewardModelSelectsByItsOwnScores() throws Exception {
    Path rm = dir.resolve("rm");
    try (CausalLM m = CausalLM.loadScorer(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu(), 5)) {
      m.save(rm.toString(), Storage.local(), DataType.FLOAT32);
    }
    BestOfNJob.Result r = run(config(ReferenceFixtures.freshSeed(), "score.model=" + rm, "prepare.template=plain"),
        "rm");
    assertEquals(rm.toString(), r.report().selector());
    assertEquals("reward_model", r.report().selectorKind());
    double[][] reward = pool("rm", "reward");
    double[][] selector = pool("rm", "selector_score");
    assertFalse(java.util.Arrays.deepEquals(reward, selector));
    double previous = Double.NEGATIVE_INFINITY;
    for (BestOfNReport.Point p : r.report().points()) {
      BestOfN.Result expected = BestOfN.evaluate(selector, reward, p.n(), 0.95);
      assertEquals(expected.reward().mean(), p.rewardMean(), 1e-12);
      assertEquals(expected.selectorScore(), p.selectorScore(), 1e-12);
      assertTrue(p.selectorScore() >= previous);
      previous = p.selectorScore();
    }
  }
}
