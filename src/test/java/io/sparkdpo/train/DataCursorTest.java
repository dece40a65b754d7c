package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Json;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class DataCursorTest {
  @Test
  void aResumedSamplerContinuesExactlyWhereTheOtherStopped() {
    ShardSampler straight = new ShardSampler(ShardCursor.start("shard-00000", 7, 42), 7);
    int[] twenty = straight.next(20);
    ShardSampler first = new ShardSampler(ShardCursor.start("shard-00000", 7, 42), 7);
    int[] a = first.next(9);
    DataCursor saved = new DataCursor(List.of(first.cursor()));
    DataCursor restored = DataCursor.fromJson(saved.toJson());
    assertEquals(saved, restored);
    ShardSampler resumed = new ShardSampler(restored.shard("shard-00000"), 7);
    int[] b = resumed.next(11);
    int[] joined = Arrays.copyOf(a, 20);
    System.arraycopy(b, 0, joined, 9, 11);
    assertArrayEquals(twenty, joined);
    assertEquals(new ShardCursor("shard-00000", 7, 42, 2, 6), resumed.cursor());
    assertEquals(20, resumed.cursor().totalConsumed());
  }

  @Test
  void everyEpochVisitsEachPairOnceInANewOrder() {
    ShardSampler s = new ShardSampler(ShardCursor.start("s", 50, 1), 50);
    int[] e0 = s.next(50);
    int[] e1 = s.next(50);
    assertArrayEquals(sorted(e0), range(50));
    assertArrayEquals(sorted(e1), range(50));
    assertFalse(Arrays.equals(e0, e1));
    assertFalse(Arrays.equals(e0, range(50)), "shuffled");
    assertFalse(Arrays.equals(ShardSampler.permutation(50, 1, 0), ShardSampler.permutation(50, 2, 0)),
        "the seed matters");
  }

  @Test
  void aShardThatChangedSizeIsRefused() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> new ShardSampler(new ShardCursor("train/shard-00001.parquet", 100, 3, 1, 20), 99));
    assertTrue(e.getMessage().contains("train/shard-00001.parquet has 100 pairs, but it has 99"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new ShardCursor("x", 5, 0, 0, 6));
    assertThrows(IllegalArgumentException.class, () -> new DataCursor(List.of()).shard("x"));
  }

  @Test
  void cursorJsonUsesSnakeCaseAndWithReplacesOneShard() throws Exception {
    DataCursor c = new DataCursor(List.of(ShardCursor.start("a", 3, 9), ShardCursor.start("b", 4, 9)));
    DataCursor moved = c.with(new ShardCursor("b", 4, 9, 1, 2));
    assertEquals(new ShardCursor("b", 4, 9, 1, 2), moved.shard("b"));
    assertEquals(c.shard("a"), moved.shard("a"));
    String json = new String(moved.toJson(), java.nio.charset.StandardCharsets.UTF_8);
    assertTrue(json.contains("\"shuffle_seed\" : 9"), json);
    assertEquals(3, moved.with(ShardCursor.start("c", 1, 0)).shards().size());
  }

  @Test
  void rngStateRoundTripsAndReproducesTheSequence() throws Exception {
    SeededRng rng = new SeededRng(1234);
    for (int i = 0; i < 5; i++) {
      rng.nextLong();
    }
    byte[] json = Json.MAPPER.writeValueAsBytes(rng.state());
    SeededRng copy = SeededRng.fromState(Json.MAPPER.readValue(json, SeededRng.State.class));
    for (int i = 0; i < 100; i++) {
      assertEquals(rng.nextLong(), copy.nextLong());
    }
    assertNotEquals(new SeededRng(1).nextLong(), new SeededRng(2).nextLong());
    assertThrows(IllegalArgumentException.class, () -> SeededRng.fromState(new SeededRng.State("mt19937", 1)));
    // SplitMix64 reference value for seed 0 (first output).
    assertEquals(0xE220A8397B1DCDAFL, new SeededRng(0).nextLong());
  }

  @Test
  void nextIntIsUniformEnough() {
    SeededRng rng = new SeededRng(7);
    int[] counts = new int[10];
    for (int i = 0; i < 100_000; i++) {
      counts[rng.nextInt(10)]++;
    }
    for (int c : counts) {
      assertTrue(Math.abs(c - 10_000) < 500, Arrays.toString(counts));
    }
    double d = rng.nextDouble();
    assertTrue(d >= 0 && d < 1);
  }

  private static int[] sorted(int[] a) {
    int[] s = a.clone();
    Arrays.sort(s);
    return s;
  }

  private static int[] range(int n) {
    int[] r = new int[n];
    for (int i = 0; i < n; i++) {
      r[i] = i;
    }
    return r;
  }
}
