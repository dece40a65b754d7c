package io.sparkdpo.inference;

import io.sparkdpo.data.HadoopConfBroadcast;
import io.sparkdpo.data.TextPrompts;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * Samples continuations for prompts on Spark executors ({@link ContinuationSampler}; each executor JVM loads its
 * models once) and brings them back to the driver in prompt order. Prompts are grouped {@code promptsPerBatch} at a
 * time by their index, and every continuation's random stream depends on the base seed, the prompt's text and the
 * sample number only, so the same request gives the same continuations with any number of partitions or executors.
 * Used by {@code generate} (sampling from pi_SFT, scored by the reward) and by evaluation (sampling from a policy,
 * with pi_SFT as the scorer for the sampled KL).
 */
public final class SamplingJob {
  private SamplingJob() {}

  /** The sampled prompts in prompt order, and what the tasks reported. */
  public record Result(List<SampledPrompt> prompts, ExecutorStats.Summary executors) {}

  public static Result run(SparkSession spark, List<TextPrompts.Prompt> prompts, SamplingRequest request) {
    List<List<TextPrompts.Prompt>> groups = new ArrayList<>();
    List<TextPrompts.Prompt> ordered = prompts.stream().sorted(Comparator.comparingInt(TextPrompts.Prompt::index))
        .toList();
    for (int i = 0; i < ordered.size(); i += request.promptsPerBatch()) {
      groups.add(List.copyOf(ordered.subList(i, Math.min(ordered.size(), i + request.promptsPerBatch()))));
    }
    if (groups.isEmpty()) {
      return new Result(List.of(), new ExecutorStats.Summary(0, 0, List.of()));
    }
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    int partitions = Math.min(groups.size(), request.partitions() > 0 ? request.partitions() : jsc.defaultParallelism());
    ExecutorStats stats = ExecutorStats.register(spark.sparkContext(), "sampling");
    ContinuationSampler sampler = new ContinuationSampler(request,
        HadoopConfBroadcast.of(spark.sparkContext()), stats);
    List<SampledPrompt> out = new ArrayList<>(jsc.parallelize(groups, partitions).mapPartitions(sampler).collect());
    out.sort(Comparator.comparingInt(p -> p.prompt().index()));
    return new Result(out, stats.summary());
  }
}
