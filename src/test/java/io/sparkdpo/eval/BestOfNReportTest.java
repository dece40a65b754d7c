package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BestOfNReportTest {
  static final double[][] REWARDS = {{1, 3, 2, 0}, {0, 0, 5, 1}};

  @TempDir
  Path dir;

  @Test
  void pointsKeepTheSelectorsBestAndPairTheirRewardWithThePoolMean() {
    BestOfNReport r = BestOfNReport.of("oracle:toy", "oracle", "toy", 0.95, REWARDS, REWARDS, List.of(1, 2, 4));
    assertEquals(2, r.prompts());
    assertEquals(4, r.samplesPerPrompt());
    // pool means 1.5 and 1.5. n = 1 keeps (1, 0); n = 2 keeps (3, 0: a tie goes to the earliest); n = 4 keeps (3, 5).
    double[] reward = {0.5, 1.5, 4.0};
    double[] improvement = {-1.0, 0.0, 2.5};
    for (int i = 0; i < 3; i++) {
      BestOfNReport.Point p = r.points().get(i);
      assertEquals(reward[i], p.rewardMean(), 1e-12);
      assertEquals(reward[i], p.selectorScore(), 1e-12);
      assertEquals(improvement[i], p.improvementMean(), 1e-12);
      assertEquals(BestOfN.klEstimate(p.n()), p.kl(), 0.0);
    }
    // n = 4: differences 1.5 and 3.5, sd sqrt(2), se 1, t(0.975, 1) = 12.7062047
    assertEquals(2.5 - 12.7062047, r.points().get(2).improvementLow(), 1e-6);
    assertEquals(2.5 + 12.7062047, r.points().get(2).improvementHigh(), 1e-6);
  }

  @Test
  void aRewardModelSelectsByItsScoresAndIsJudgedByTheGroundTruth() {
    double[][] selector = {{0, 0, 0, 9}, {0, 0, 5, 1}};
    BestOfNReport r = BestOfNReport.of("rm", "reward_model", "toy", 0.9, selector, REWARDS, List.of(4));
    assertEquals((0 + 5) / 2.0, r.points().get(0).rewardMean(), 1e-12);
    assertEquals((9 + 5) / 2.0, r.points().get(0).selectorScore(), 1e-12);
    assertThrows(IllegalArgumentException.class, () -> BestOfNReport.of("rm", "reward_model", "toy", 0.9,
        new double[][] {{1}}, new double[][] {{1}}, List.of(1)), "an interval needs two prompts");
  }

  @Test
  void writesTheFieldsCompareReadsAndReadsThemBack() throws Exception {
    BestOfNReport r = BestOfNReport.of("oracle:toy", "oracle", "toy", 0.95, REWARDS, REWARDS, List.of(1, 4));
    r.write(Storage.local(), dir.toString());
    JsonNode json = Json.MAPPER.readTree(dir.resolve(BestOfNReport.FILE).toFile());
    assertEquals(new TreeSet<>(List.of("selector", "selector_kind", "reward", "confidence", "prompts",
        "samples_per_prompt", "kl_estimate", "points")), names(json));
    assertEquals(new TreeSet<>(List.of("n", "reward_mean", "reward_low", "reward_high", "selector_score", "kl",
        "improvement_mean", "improvement_low", "improvement_high")), names(json.get("points").get(0)));
    assertEquals("analytic: log n - (n-1)/n (not measured)", json.get("kl_estimate").asText());
    assertEquals(r, BestOfNReport.read(Storage.local(), dir.toString()));
  }

  private static TreeSet<String> names(JsonNode node) {
    TreeSet<String> out = new TreeSet<>();
    node.fieldNames().forEachRemaining(out::add);
    return out;
  }
}
