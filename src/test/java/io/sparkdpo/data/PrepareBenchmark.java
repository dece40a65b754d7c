package io.sparkdpo.data;

import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.Storage;
import io.sparkdpo.testing.SharedSpark;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Throughput of prepare on generated HH-style pairs (10k and 100k) against the bare tokenizer over the same
 * rendered texts on the same cores, measured in one run. Run with
 * {@code mvn -B -o -Pbench test -Dtest=PrepareBenchmark}; figures go to docs/benchmarks.md.
 */
@Tag("bench")
class PrepareBenchmark {
  @TempDir
  Path dir;

  /** One timed run: wall seconds, and CPU seconds of the whole process (all Java and native threads). */
  private record Measured(long pairs, long tokens, double seconds, double cpuSeconds) {
    double pairsPerSecond() {
      return pairs / seconds;
    }

    double tokensPerSecond() {
      return tokens / seconds;
    }

    double pairsPerCpuSecond() {
      return pairs / cpuSeconds;
    }
  }

  @Test
  void prepareThroughputAgainstBareTokenization() throws Exception {
    String loadBefore = loadAverage();
    SparkSession spark = SharedSpark.get();
    int cores = spark.sparkContext().defaultParallelism();
    JobConfig cfg = ConfigLoader.load(null, List.of("prepare.max_length=2048", "prepare.max_prompt_length=1024",
        "prepare.eval_fraction=0.05", "prepare.num_shards=2"));
    Path small = dir.resolve("pairs-10k.jsonl");
    Path large = dir.resolve("pairs-100k.jsonl");
    SyntheticPairs.writeValid(small, 10_000, 11);
    SyntheticPairs.writeValid(large, 100_000, 12);

    prepare(spark, cfg, small, dir.resolve("warmup")); // JIT, Spark and tokenizer warm-up
    Measured p10 = prepare(spark, cfg, small, dir.resolve("out-10k"));
    List<Measured> prepares = new ArrayList<>();
    prepares.add(prepare(spark, cfg, large, dir.resolve("out-100k-0")));
    List<String> texts = renderedTexts(dir.resolve("out-100k-0"));
    TextTokenizer tok = TextTokenizer.load(TokenizerFiles.BUILTIN, Storage.local());
    bare(tok, texts.subList(0, texts.size() / 10), cores); // warm-up
    // Bare and prepare runs alternate so both see the same spells of load from other processes; the ratio is of
    // medians. CPU seconds are much less sensitive to other load than wall seconds, hence the second ratio.
    List<Measured> bares = new ArrayList<>();
    bares.add(bare(tok, texts, cores));
    prepares.add(prepare(spark, cfg, large, dir.resolve("out-100k-1")));
    bares.add(bare(tok, texts, cores));
    prepares.add(prepare(spark, cfg, large, dir.resolve("out-100k-2")));
    bares.add(bare(tok, texts, cores));
    Measured p100 = median(prepares);
    Measured bare = median(bares);

    String report = String.format("""
        load average before / after: %s / %s
        cores: %d (Spark local[%d]; bare tokenizer on %d threads, batches of 768 texts as prepare sends them)
        prepare 10k:  %d pairs, %d tokens in %.1f s: %.0f pairs/s, %.0f tokens/s
        prepare 100k (median of %s s): %d pairs, %d tokens in %.1f s (%.1f CPU s): %.0f pairs/s, %.0f tokens/s
        bare tokenizer, same 100k rendered texts (median of %s s): %d tokens in %.1f s (%.1f CPU s): %.0f pairs/s, %.0f tokens/s
        ratio prepare/bare, wall pairs/s (medians): %.2f
        ratio prepare/bare, pairs per CPU second (medians): %.2f
        time 100k / time 10k: %.2f (10.0 = linear)
        """, loadBefore, loadAverage(), cores, cores, cores,
        p10.pairs, p10.tokens, p10.seconds, p10.pairsPerSecond(), p10.tokensPerSecond(),
        seconds(prepares), p100.pairs, p100.tokens, p100.seconds, p100.cpuSeconds, p100.pairsPerSecond(),
        p100.tokensPerSecond(),
        seconds(bares), bare.tokens, bare.seconds, bare.cpuSeconds, bare.pairsPerSecond(), bare.tokensPerSecond(),
        p100.pairsPerSecond() / bare.pairsPerSecond(), p100.pairsPerCpuSecond() / bare.pairsPerCpuSecond(),
        p100.seconds / p10.seconds);
    System.out.print(report);
    Path out = Path.of(System.getProperty("project.build.directory", "target"), "bench", "prepare.txt");
    Files.createDirectories(out.getParent());
    Files.writeString(out, report);
  }

  private static Measured median(List<Measured> runs) {
    List<Measured> sorted = new ArrayList<>(runs);
    sorted.sort((a, b) -> Double.compare(a.seconds, b.seconds));
    Measured m = sorted.get(sorted.size() / 2);
    double cpu = runs.stream().mapToDouble(Measured::cpuSeconds).sorted().toArray()[runs.size() / 2];
    return new Measured(m.pairs, m.tokens, m.seconds, cpu);
  }

  private static String seconds(List<Measured> runs) {
    return runs.stream().map(r -> String.format("%.1f", r.seconds)).toList().toString();
  }

  private static double cpuNow() {
    return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
        .getOperatingSystemMXBean()).getProcessCpuTime() / 1e9;
  }

  /** The 1, 5 and 15 minute load averages: the machine is shared, so every figure carries its load. */
  private static String loadAverage() throws java.io.IOException {
    String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
    return f[0] + " " + f[1] + " " + f[2];
  }

  private static Measured prepare(SparkSession spark, JobConfig cfg, Path input, Path output) {
    double cpu0 = cpuNow();
    long t0 = System.nanoTime();
    PreparedManifest m = new PrepareJob(spark, cfg, 1).run(List.of(input.toString()), output.toString()).manifest();
    double s = (System.nanoTime() - t0) / 1e9;
    long tokens = m.splits().values().stream().mapToLong(PreparedManifest.Split::tokens).sum();
    return new Measured(m.counts().kept(), tokens, s, cpuNow() - cpu0);
  }

  /** The prompt, chosen and rejected texts prepare tokenized (read back from the shards). */
  private static List<String> renderedTexts(Path prepared) {
    PreparedManifest m = PreparedManifest.read(Storage.local(), prepared.toString());
    List<String> texts = new ArrayList<>();
    for (String split : List.of("train", "eval")) {
      for (String f : m.shardFiles(prepared.toString(), split)) {
        for (PreparedPair p : PreparedShardReader.read(Storage.local(), f)) {
          texts.add(p.promptText());
          texts.add(p.chosenText());
          texts.add(p.rejectedText());
        }
      }
    }
    return texts;
  }

  /** The texts split over {@code threads} threads, each encoding batches of 768 texts as prepare does. */
  private static Measured bare(TextTokenizer tok, List<String> texts, int threads) throws Exception {
    int batch = 768;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      double cpu0 = cpuNow();
      long t0 = System.nanoTime();
      List<Future<Long>> parts = new ArrayList<>();
      int per = (texts.size() + threads - 1) / threads;
      for (int t = 0; t < threads; t++) {
        List<String> mine = texts.subList(Math.min(texts.size(), t * per), Math.min(texts.size(), (t + 1) * per));
        parts.add(pool.submit(() -> {
          long n = 0;
          for (int i = 0; i < mine.size(); i += batch) {
            for (int[] ids : tok.encodeBatch(mine.subList(i, Math.min(mine.size(), i + batch)))) {
              n += ids.length;
            }
          }
          return n;
        }));
      }
      long tokens = 0;
      for (Future<Long> f : parts) {
        tokens += f.get();
      }
      return new Measured(texts.size() / 3, tokens, (System.nanoTime() - t0) / 1e9, cpuNow() - cpu0);
    } finally {
      pool.shutdown();
    }
  }
}
