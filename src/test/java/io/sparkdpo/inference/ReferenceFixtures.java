package io.sparkdpo.inference;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.PreparedManifest;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.data.PreparedShardReader;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.SequenceLogProbs;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.sql.SparkSession;

/** Prepared folders from the committed sample pairs, configs for the reference stage, and in-process log-probs. */
final class ReferenceFixtures {
  static final Path SAMPLE_PAIRS = Path.of("sample-data/preferences/trl-sample.jsonl");
  /** Built-in model seeds no other test uses, so each test finds its model absent from this JVM's cache. */
  private static final AtomicLong SEEDS = new AtomicLong(System.nanoTime() & 0xFFFFFF);

  private ReferenceFixtures() {}

  static long freshSeed() {
    return 900_000_000L + SEEDS.incrementAndGet();
  }

  /** Prepares the 50 sample pairs with the built-in tokenizer into {@code shards} train shards and eval shards. */
  static Path prepare(SparkSession spark, Path dir, int shards) {
    return prepare(spark, SAMPLE_PAIRS, dir, shards);
  }

  static Path prepare(SparkSession spark, Path input, Path dir, int shards) {
    JobConfig cfg = ConfigLoader.load(null, List.of("prepare.tokenizer=builtin", "prepare.template=hh",
        "prepare.max_length=192", "prepare.max_prompt_length=96", "prepare.eval_fraction=0.2",
        "prepare.num_shards=" + shards));
    new PrepareJob(spark, cfg, 1).run(List.of(input.toString()), dir.toString());
    return dir;
  }

  static JobConfig config(long seed, String... overrides) {
    List<String> all = new ArrayList<>(List.of("model.path=builtin:tiny", "model.seed=" + seed,
        "reference.batch_tokens=2048", "reference.sort_window=16"));
    all.addAll(List.of(overrides));
    return ConfigLoader.load(null, all);
  }

  /** Every pair of a folder's splits, train then eval, shards in order, rows in file order. */
  static List<PreparedPair> pairs(Path dir) {
    Storage storage = Storage.local();
    PreparedManifest m = readManifest(dir);
    List<PreparedPair> out = new ArrayList<>();
    for (String split : List.of(PreparedManifest.TRAIN, PreparedManifest.EVAL)) {
      for (String f : m.shardFiles(dir.toString(), split)) {
        out.addAll(PreparedShardReader.read(storage, f));
      }
    }
    return out;
  }

  /** A prepared or referenced manifest's splits (stage not checked). */
  static PreparedManifest readManifest(Path dir) {
    try {
      return io.sparkdpo.io.Json.MAPPER.readValue(dir.resolve(PreparedManifest.FILE).toFile(), PreparedManifest.class);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /**
   * Asserts stored log-probs equal the in-process ones: per response token within 1e-5 nats, and the sums within
   * 1e-6 of their size. (Sums of ~150 float32 log-probs near -1000 differ in the last float32 bit, 6e-5, when the
   * batch around a pair changes; an absolute 1e-5 on the sum is below float32 resolution there.) Returns the worst
   * absolute difference of a sum.
   */
  static double assertMatches(List<PreparedPair> pairs, double[][] expected) {
    double worst = 0;
    for (int i = 0; i < pairs.size(); i++) {
      PreparedPair p = pairs.get(i);
      double[] got = {p.refChosenLogp(), p.refRejectedLogp()};
      int[] tokens = {p.chosenIds().length, p.rejectedIds().length};
      for (int k = 0; k < 2; k++) {
        double diff = Math.abs(got[k] - expected[i][k]);
        worst = Math.max(worst, diff);
        org.junit.jupiter.api.Assertions.assertTrue(diff / tokens[k] <= 1e-5 && diff <= 1e-6 * Math.abs(expected[i][k]),
            "pair " + p.pairId() + (k == 0 ? " chosen" : " rejected") + ": stored " + got[k] + ", in-process "
                + expected[i][k]);
      }
    }
    return worst;
  }

  /** Chosen and rejected log-probs of each pair computed in this JVM, one pair per forward pass. */
  static double[][] inProcess(long seed, List<PreparedPair> pairs) {
    double[][] out = new double[pairs.size()][];
    try (CausalLM model = CausalLM.load(CausalLM.BUILTIN_TINY, Storage.local(), Device.cpu(), seed);
        NDManager m = NDManager.newBaseManager()) {
      SequenceLogProbs lp = new SequenceLogProbs(model);
      for (int i = 0; i < pairs.size(); i++) {
        PreparedPair p = pairs.get(i);
        SequenceLogProbs.Pairs r = lp.computePairs(m, List.of(p.promptIds()), List.of(p.chosenIds()),
            List.of(p.rejectedIds()), false);
        out[i] = new double[] {r.chosen().sums()[0], r.rejected().sums()[0]};
      }
    }
    return out;
  }
}
