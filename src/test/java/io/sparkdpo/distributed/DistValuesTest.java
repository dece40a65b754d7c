package io.sparkdpo.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Shard planning, schedules, digests and metric means: the small pieces of the distributed run. */
class DistValuesTest {

  @Test
  void shardsAreDealtRoundRobinAndTrainingShardsMustSplitEvenly() {
    ShardPlan plan = ShardPlan.of(List.of("s0", "s1", "s2", "s3", "s4", "s5"), List.of("e0", "e1"), 3);
    assertEquals(List.of(List.of("s0", "s3"), List.of("s1", "s4"), List.of("s2", "s5")), plan.train());
    assertEquals(List.of(List.of("e0"), List.of("e1"), List.of()), plan.eval());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ShardPlan.of(List.of("a", "b", "c"), List.of(), 2));
    assertTrue(e.getMessage().startsWith("3 training shards cannot be split evenly over 2 workers"),
        e.getMessage());
  }

  @Test
  void checksumsRunOnTheirIntervalBeforeEverySaveAndAtTheEnd() {
    TrainingSchedule s = new TrainingSchedule(10, 2, 0, 3, 4);
    List<Long> checks = java.util.stream.LongStream.rangeClosed(1, 10).filter(s::checksumAfter).boxed().toList();
    assertEquals(List.of(3L, 4L, 6L, 8L, 9L, 10L), checks);
    assertTrue(s.evaluateAfter(10));
    assertFalse(s.evaluateAfter(9));
    assertTrue(s.logAfter(10));
    assertFalse(s.logAfter(9));
  }

  @Test
  void theDigestSeesEveryBitAndTheOrder() {
    float[] a = {1f, -0f, 3.5f, Float.NaN};
    long digest = ParameterDigest.of(a);
    ByteBuffer bytes = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    for (float f : a) {
      bytes.putFloat(f);
    }
    assertEquals(digest, new ParameterDigest().update(bytes.flip()).value());
    assertEquals(16, digest & 0xFFFF_FFFFL);
    float[] flipped = a.clone();
    flipped[2] = Float.intBitsToFloat(Float.floatToRawIntBits(3.5f) ^ 1);
    assertNotEquals(digest, ParameterDigest.of(flipped));
    assertNotEquals(digest, ParameterDigest.of(new float[] {1f, 0f, 3.5f, Float.NaN}), "-0 and 0 differ");
    assertNotEquals(digest, ParameterDigest.of(new float[] {-0f, 1f, 3.5f, Float.NaN}), "order counts");
    // Spread over two updates, the same bytes give the same digest.
    ParameterDigest parts = new ParameterDigest().update(new float[] {1f, -0f}).update(new float[] {3.5f, Float.NaN});
    assertEquals(digest, parts.value());
  }

  @Test
  @Timeout(value = 60, unit = TimeUnit.SECONDS)
  void metricsAreWeightedMeansOverRanksAndMustCarryTheSameNames() throws Exception {
    try (InProcessRing ring = InProcessRing.connect(3, InProcessRun.RING)) {
      List<Map<String, Double>> means = ring.onEveryRank(g -> MetricsMean.across(g, switch (g.rank()) {
        case 0 -> new LocalMetrics(1, Map.of("loss", 3.0, "acc", 1.0));
        case 1 -> new LocalMetrics(2, Map.of("loss", 6.0, "acc", 0.25));
        default -> new LocalMetrics(0, Map.of("loss", Double.NaN, "acc", Double.NaN)); // nothing to report
      }));
      for (Map<String, Double> m : means) {
        assertEquals(Map.of("loss", 5.0, "acc", 0.5), m);
      }
      List<Map<String, Double>> none = ring.onEveryRank(g -> MetricsMean.across(g,
          new LocalMetrics(0, Map.of("loss", 1.0))));
      assertTrue(none.get(0).isEmpty());

      var outcomes = ring.outcomes(g -> MetricsMean.across(g,
          LocalMetrics.of(Map.of(g.rank() == 1 ? "los" : "loss", 1.0))), 30);
      for (var o : outcomes) {
        assertTrue(o.error() instanceof IllegalStateException, String.valueOf(o.error()));
        assertTrue(o.error().getMessage().contains("but another rank reports different names"),
            o.error().getMessage());
      }
    }
  }
}
