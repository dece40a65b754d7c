package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MetricsLogTest {
  @TempDir
  Path run;

  private static Map<String, Object> train(long step, double loss) {
    Map<String, Object> r = new LinkedHashMap<>();
    r.put(MetricNames.STEP, step);
    r.put(MetricNames.LOSS, loss);
    r.put(MetricNames.LEARNING_RATE, 1e-6);
    r.put(MetricNames.EPOCH, step / 10.0);
    return r;
  }

  @Test
  void buffersFlushesPartsByTimeAndConsolidatesOnClose() throws IOException {
    AtomicLong now = new AtomicLong();
    MetricsLog log = new MetricsLog(Storage.local(), run.toString(), 1_000, now::get);
    log.log(train(1, 0.69));
    log.log(train(2, 0.68));
    assertFalse(Files.exists(run.resolve("metrics")), "nothing written before the interval");
    now.addAndGet(1_000);
    log.log(train(3, 0.67));
    assertEquals(3, Files.readAllLines(run.resolve("metrics/part-000000.jsonl")).size());
    Map<String, Object> eval = new LinkedHashMap<>();
    eval.put(MetricNames.STEP, 3);
    eval.put(MetricNames.EVAL + MetricNames.LOSS, 0.7);
    eval.put(MetricNames.EVAL + MetricNames.REWARDS_ACCURACIES, 0.5);
    log.log(eval);
    log.close();
    assertTrue(Files.exists(run.resolve("metrics/part-000001.jsonl")));
    List<String> lines = Files.readAllLines(run.resolve("metrics.jsonl"));
    assertEquals(4, lines.size());
    assertEquals("{\"epoch\":0.1,\"learning_rate\":1.0E-6,\"loss\":0.69,\"step\":1}", lines.get(0));
    assertEquals("{\"eval/loss\":0.7,\"eval/rewards/accuracies\":0.5,\"step\":3}", lines.get(3));
  }

  @Test
  void aResumedRunContinuesThePartsAndItsRecordsWin() {
    Storage storage = Storage.local();
    MetricsLog first = new MetricsLog(storage, run.toString(), Long.MAX_VALUE, () -> 0);
    for (long s = 1; s <= 4; s++) {
      first.log(train(s, 1.0 / s));
    }
    first.flush(); // then the process dies without close(); the last checkpoint was at step 2
    MetricsLog resumed = MetricsLog.open(storage, run.toString());
    resumed.log(train(3, 0.3));
    resumed.log(train(4, 0.4));
    resumed.log(train(5, 0.5));
    resumed.close();
    assertTrue(Files.exists(run.resolve("metrics/part-000001.jsonl")));
    List<Map<String, Object>> all = MetricsLog.readAll(storage, run.toString());
    assertEquals(List.of(1, 2, 3, 4, 5), all.stream().map(r -> ((Number) r.get("step")).intValue()).toList());
    assertEquals(0.4, all.get(3).get("loss"));
    assertEquals(0.5, all.get(1).get("loss"));
  }

  @Test
  void aRecordWithoutStepIsRefused() {
    MetricsLog log = MetricsLog.open(Storage.local(), run.toString());
    assertThrows(IllegalArgumentException.class, () -> log.log(Map.of("loss", 1.0)));
  }

  /** The drill: a writer killed mid-flush left a torn part; the rerun trained every step, then failed on it. */
  @Test
  void aTornPartKeepsItsWholeRecordsAndTheRunFolderStaysUsable() throws IOException {
    Storage storage = Storage.local();
    Files.createDirectories(run.resolve("metrics"));
    Files.writeString(run.resolve("metrics/part-000000.jsonl"),
        "{\"loss\":0.69,\"step\":1}\n{\"loss\":0.68,\"step\":2}\n{\"loss\":0.6");
    Files.writeString(run.resolve("metrics/part-000001.jsonl"), "{\"loss\":0.5,\"st");
    assertEquals(List.of(1, 2), MetricsLog.readAll(storage, run.toString()).stream()
        .map(r -> ((Number) r.get("step")).intValue()).toList());

    MetricsLog resumed = MetricsLog.open(storage, run.toString());
    resumed.log(train(3, 0.3));
    resumed.close();
    assertTrue(Files.exists(run.resolve("metrics/part-000002.jsonl")), "numbering goes on after the torn part");
    List<String> lines = Files.readAllLines(run.resolve("metrics.jsonl"));
    assertEquals(3, lines.size(), String.join("\n", lines));
    assertEquals("{\"loss\":0.68,\"step\":2}", lines.get(1));
  }

  @Test
  void aLineThatIsNoRecordIsSkippedNotFatal() throws IOException {
    Files.createDirectories(run.resolve("metrics"));
    Files.writeString(run.resolve("metrics/part-000000.jsonl"),
        "{\"step\":1}\nnot json\n[1,2]\n{\"loss\":1.0}\n{\"step\":2}\n");
    assertEquals(List.of(1, 2), MetricsLog.readAll(Storage.local(), run.toString()).stream()
        .map(r -> ((Number) r.get("step")).intValue()).toList());
  }
}
