package io.sparkdpo.inference;

import static io.sparkdpo.model.ModelThroughputBench.matmul;
import static io.sparkdpo.model.ModelThroughputBench.matmulParams;
import static io.sparkdpo.model.ModelThroughputBench.median;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.data.PrepareJob;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.testing.SharedSpark;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reference-stage throughput against the no-grad forward FLOP limit of libtorch's matmul on the same threads.
 * Data: the 484 HH-style sample pairs (built-in tokenizer, HH template). Models: the built-in tiny model and a ~10M
 * Llama saved as a folder. Per round: the whole {@code ReferenceJob} in {@code local[2]} (read, score, regroup, write,
 * manifest; model already cached in the JVM), the same pairs scored in-process by {@link PairScoring} (no Spark),
 * then a burst of 2048x2048 float32 matmuls. The limit is matmul FLOP/s / (2 x matmul parameters) tokens/s; ratios
 * are taken per round, medians reported.
 * Run: {@code mvn -B -o -Pbench test -Dtest=ReferenceThroughputBench}; figures in docs/benchmarks.md.
 */
@Tag("bench")
class ReferenceThroughputBench {
  private static final int ROUNDS = Integer.getInteger("bench.rounds", 3);

  @TempDir
  Path dir;

  @Test
  void reportsReferenceTokensPerSecondAgainstTheMatmulForwardLimit() {
    SparkSession spark = SharedSpark.get();
    Engine.getEngine("PyTorch");
    System.out.printf(Locale.ROOT, "libtorch threads: intra-op %d; Spark %s%n", JniUtils.getNumThreads(),
        spark.sparkContext().master());
    JobConfig prepareCfg = ConfigLoader.load(null, List.of("prepare.tokenizer=builtin", "prepare.num_shards=2",
        "prepare.eval_fraction=0.05"));
    Path data = dir.resolve("prepared");
    new PrepareJob(spark, prepareCfg, 1).run(List.of("sample-data/preferences/hh-sample.jsonl"), data.toString());
    List<PreparedPair> pairs = ReferenceFixtures.pairs(data);

    ModelConfig medium = ModelConfig.llama(4096, 384, 1024, 6, 6, 6, true);
    Path mediumDir = dir.resolve("llama-10m");
    try (CausalLM m = CausalLM.create(medium, Device.cpu(), 7)) {
      m.save(mediumDir.toString(), Storage.local(), DataType.FLOAT32);
    }
    double a = run(spark, data, pairs, CausalLM.BUILTIN_TINY, ModelConfig.tiny(), 1);
    double b = run(spark, data, pairs, CausalLM.BUILTIN_TINY, ModelConfig.tiny(), 2);
    double c = run(spark, data, pairs, mediumDir.toString(), medium, 1);
    double d = run(spark, data, pairs, mediumDir.toString(), medium, 2);
    assertTrue(a > 0 && b > 0 && c > 0 && d > 0);
  }

  private double run(SparkSession spark, Path data, List<PreparedPair> pairs, String model, ModelConfig config,
      int partitions) {
    long matmulParams = matmulParams(config);
    JobConfig cfg = ConfigLoader.load(null, List.of("model.path=" + model, "reference.partitions=" + partitions));
    // Warm-up: loads the model into this JVM's cache and runs every code path once.
    new ReferenceJob(spark, cfg).run(data.toString(), dir.resolve("warm-" + partitions + "-" + config.hiddenSize())
        .toString());
    List<int[]> p = pairs.stream().map(PreparedPair::promptIds).toList();
    List<int[]> ch = pairs.stream().map(PreparedPair::chosenIds).toList();
    List<int[]> rj = pairs.stream().map(PreparedPair::rejectedIds).toList();
    long stepTokens = pairs.stream().mapToLong(x -> 2L * x.promptIds().length + x.chosenIds().length
        + x.rejectedIds().length).sum();
    double[] stage = new double[ROUNDS];
    double[] local = new double[ROUNDS];
    double[] matmul = new double[ROUNDS];
    double[] stageRatio = new double[ROUNDS];
    double[] localRatio = new double[ROUNDS];
    try (CausalLM inProcess = CausalLM.load(model, Storage.local(), Device.cpu());
        NDManager mm = NDManager.newBaseManager()) {
      NDArray x = mm.randomNormal(new Shape(2048, 2048));
      NDArray y = mm.randomNormal(new Shape(2048, 2048));
      matmul(x, y, 2);
      for (int r = 0; r < ROUNDS; r++) {
        long start = System.nanoTime();
        ReferenceJob.Result res = new ReferenceJob(spark, cfg).run(data.toString(),
            dir.resolve("round-" + r + "-" + partitions + "-" + config.hiddenSize()).toString());
        stage[r] = stepTokens / ((System.nanoTime() - start) / 1e9);
        assertTrue(!res.upToDate() && res.manifest().reference().stepTokens() == stepTokens);
        start = System.nanoTime();
        PairScoring.score(inProcess, p, ch, rj, cfg.reference().batchTokens());
        local[r] = stepTokens / ((System.nanoTime() - start) / 1e9);
        matmul[r] = matmul(x, y, 6);
        double limit = matmul[r] / (2.0 * matmulParams);
        stageRatio[r] = stage[r] / limit;
        localRatio[r] = local[r] / limit;
      }
    }
    System.out.printf(Locale.ROOT, "%s (%,d params, %,d in matmuls), %d pairs, %,d step tokens, partitions %d:%n"
            + "  stage %.0f tokens/s, in-process %.0f tokens/s, matmul %.1f GFLOP/s -> limit %.0f tokens/s%n"
            + "  ratio stage/limit %.3f (rounds %s), in-process/limit %.3f (rounds %s), stage/in-process %.2f%n",
        model.startsWith("builtin") ? model : "llama ~10M folder", config.numParameters(), matmulParams,
        pairs.size(), stepTokens, partitions, median(stage), median(local), median(matmul) / 1e9,
        median(matmul) / (2.0 * matmulParams), median(stageRatio), rounded(stageRatio), median(localRatio),
        rounded(localRatio), median(stage) / median(local));
    return median(stageRatio);
  }

  private static String rounded(double[] values) {
    List<Double> out = new ArrayList<>();
    for (double v : values) {
      out.add(Math.round(v * 1000) / 1000.0);
    }
    return out.toString();
  }
}
