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

  private record Measured(long pairs, long tokens, double seconds) {
    double pairsPerSecond() {
      return pairs / seconds;
    }

    double tokensPerSecond() {
      return tokens / seconds;
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
    Measured p100first = prepare(spark, cfg, large, dir.resolve("out-100k"));
    List<String> texts = renderedTexts(dir.resolve("out-100k"));
    TextTokenizer tok = TextTokenizer.load(TokenizerFiles.BUILTIN, Storage.local());
    bare(tok, texts.subList(0, texts.size() / 10), cores, 768); // warm-up
    // The baseline is the fastest of several bare runs, before and after prepare's, in two batchings (as prepare
    // sends them on one thread per core, and large batches left to the library's own thread pool): on a shared
    // machine this keeps the ratio conservative.
    List<Measured> bareRuns = new ArrayList<>();
    bareRuns.add(bare(tok, texts, cores, 768));
    bareRuns.add(bare(tok, texts, 1, 30_000));
    Measured p10 = prepare(spark, cfg, small, dir.resolve("out-10k"));
    Measured p100second = prepare(spark, cfg, large, dir.resolve("out-100k-again"));
    bareRuns.add(bare(tok, texts, cores, 768));
    bareRuns.add(bare(tok, texts, 1, 30_000));
    Measured p100 = p100first.seconds < p100second.seconds ? p100first : p100second;
    Measured bare = bareRuns.stream().min((a, b) -> Double.compare(a.seconds, b.seconds)).orElseThrow();

    String report = String.format("""
        load average before / after: %s / %s
        cores: %d (Spark local[%d]; bare tokenizer on %d threads)
        prepare 10k:  %d pairs, %d tokens in %.1f s: %.0f pairs/s, %.0f tokens/s
        prepare 100k: %d pairs, %d tokens in %.1f s: %.0f pairs/s, %.0f tokens/s (runs: %.1f s, %.1f s)
        bare tokenizer, same 100k rendered texts: %d tokens in %.1f s: %.0f pairs/s, %.0f tokens/s
          (runs, threads x batch %dx768, 1x30000, %dx768, 1x30000: %.1f s, %.1f s, %.1f s, %.1f s)
        ratio prepare/bare (pairs/s, 100k): %.2f
        time 100k / time 10k: %.2f (10.0 = linear)
        """, loadBefore, loadAverage(), cores, cores, cores, p10.pairs, p10.tokens, p10.seconds, p10.pairsPerSecond(), p10.tokensPerSecond(),
        p100.pairs, p100.tokens, p100.seconds, p100.pairsPerSecond(), p100.tokensPerSecond(),
        p100first.seconds, p100second.seconds,
        bare.tokens, bare.seconds, bare.pairsPerSecond(), bare.tokensPerSecond(), cores, cores,
        bareRuns.get(0).seconds, bareRuns.get(1).seconds, bareRuns.get(2).seconds, bareRuns.get(3).seconds,
        p100.pairsPerSecond() / bare.pairsPerSecond(), p100.seconds / p10.seconds);
    System.out.print(report);
    Path out = Path.of(System.getProperty("project.build.directory", "target"), "bench", "prepare.txt");
    Files.createDirectories(out.getParent());
    Files.writeString(out, report);
  }

  /** The 1, 5 and 15 minute load averages: the machine is shared, so every figure carries its load. */
  private static String loadAverage() throws java.io.IOException {
    String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
    return f[0] + " " + f[1] + " " + f[2];
  }

  private static Measured prepare(SparkSession spark, JobConfig cfg, Path input, Path output) {
    long t0 = System.nanoTime();
    PreparedManifest m = new PrepareJob(spark, cfg, 1).run(List.of(input.toString()), output.toString()).manifest();
    double s = (System.nanoTime() - t0) / 1e9;
    long tokens = m.splits().values().stream().mapToLong(PreparedManifest.Split::tokens).sum();
    return new Measured(m.counts().kept(), tokens, s);
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

  /** The texts split over {@code threads} threads, each encoding batches of {@code batch} texts. */
  private static Measured bare(TextTokenizer tok, List<String> texts, int threads, int batch) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
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
      return new Measured(texts.size() / 3, tokens, (System.nanoTime() - t0) / 1e9);
    } finally {
      pool.shutdown();
    }
  }
}
