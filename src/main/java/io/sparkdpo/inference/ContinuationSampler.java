package io.sparkdpo.inference;

import ai.djl.ndarray.NDManager;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.distributed.TaskDevice;
import io.sparkdpo.eval.RewardFunction;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.Generator;
import io.sparkdpo.model.SequenceLogProbs;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.SerializableConfiguration;
import org.apache.spark.util.TaskCompletionListener;

/**
 * The executor side of {@link SamplingJob}: for each group of prompts, one batched generation of every prompt's K
 * continuations from the JVM's cached model ({@link ExecutorModels}), each row drawing from a seed derived from the
 * base seed, the prompt's text and the sample number only ({@link #rowSeed}); then, if asked, the sampled tokens'
 * teacher-forced log-probs under a second cached model, and the reward of each decoded continuation (the reward is
 * loaded once per JVM too). Groups are fixed by the driver, so results do not depend on the partitioning.
 */
final class ContinuationSampler implements FlatMapFunction<Iterator<List<TextPrompts.Prompt>>, SampledPrompt> {
  private static final Map<String, RewardFunction> REWARDS = new ConcurrentHashMap<>();

  private final SamplingRequest request;
  private final Broadcast<SerializableConfiguration> conf;
  private final ExecutorStats stats;

  ContinuationSampler(SamplingRequest request, Broadcast<SerializableConfiguration> conf, ExecutorStats stats) {
    this.request = request;
    this.conf = conf;
    this.stats = stats;
  }

  /** Row seed of sample {@code sample} of a prompt: independent of batch, partition and prompt order. */
  static long rowSeed(long seed, String promptText, int sample) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(ByteBuffer.allocate(12).putLong(seed).putInt(sample).array());
      md.update(promptText.getBytes(StandardCharsets.UTF_8));
      return ByteBuffer.wrap(md.digest()).getLong();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public Iterator<SampledPrompt> call(Iterator<List<TextPrompts.Prompt>> groups) {
    stats.taskRan();
    if (!groups.hasNext()) {
      return List.<SampledPrompt>of().iterator();
    }
    Configuration hadoop = conf.value().value();
    List<AutoCloseable> held = new ArrayList<>();
    TaskContext task = TaskContext.get();
    try {
      ExecutorModels.Lease sampler = lease(request.model(), hadoop, held);
      ExecutorModels.Lease scorer = request.scorer() == null ? null : lease(request.scorer(), hadoop, held);
      TextTokenizer tokenizer = TextTokenizer.of(request.tokenizer());
      RewardFunction reward = request.reward() == null ? null
          : REWARDS.computeIfAbsent(request.reward(), spec -> RewardFunctions.load(spec, new Storage(hadoop)));
      List<SampledPrompt> out = new ArrayList<>();
      while (groups.hasNext()) {
        out.addAll(sample(groups.next(), sampler, scorer, tokenizer, reward));
      }
      return out.iterator();
    } finally {
      if (task == null) {
        closeAll(held);
      } else {
        task.addTaskCompletionListener((TaskCompletionListener) ctx -> closeAll(held));
      }
    }
  }

  private ExecutorModels.Lease lease(ModelSpec spec, Configuration hadoop, List<AutoCloseable> held) {
    ExecutorModels.Lease lease = ExecutorModels.acquire(spec, TaskDevice.forCurrentTask(spec.device()), hadoop);
    held.add(lease);
    stats.modelUsed(lease.loadedNow());
    return lease;
  }

  private List<SampledPrompt> sample(List<TextPrompts.Prompt> group, ExecutorModels.Lease sampler,
      ExecutorModels.Lease scorer, TextTokenizer tokenizer, RewardFunction reward) {
    int k = request.samplesPerPrompt();
    List<int[]> rows = new ArrayList<>(group.size() * k);
    long[] seeds = new long[group.size() * k];
    for (int g = 0; g < group.size(); g++) {
      for (int s = 0; s < k; s++) {
        rows.add(group.get(g).ids());
        seeds[g * k + s] = rowSeed(request.sampling().seed(), group.get(g).text(), s);
      }
    }
    List<Generator.Generation> generated = new Generator(sampler.model()).generate(rows, request.sampling(), seeds);
    double[][] scored = null;
    if (scorer != null) {
      try (NDManager manager = NDManager.newBaseManager(scorer.model().device(), "PyTorch")) {
        scored = new SequenceLogProbs(scorer.model()).tokenLogProbs(manager, rows,
            generated.stream().map(Generator.Generation::sampledTokens).toList());
      }
    }
    List<SampledPrompt> out = new ArrayList<>(group.size());
    for (int g = 0; g < group.size(); g++) {
      TextPrompts.Prompt prompt = group.get(g);
      List<SampledPrompt.Continuation> continuations = new ArrayList<>(k);
      for (int s = 0; s < k; s++) {
        Generator.Generation gen = generated.get(g * k + s);
        String text = tokenizer.decode(gen.tokens());
        continuations.add(new SampledPrompt.Continuation(s, gen.sampledTokens(), text, gen.stopped(), gen.logProbs(),
            scored == null ? null : scored[g * k + s], reward == null ? Double.NaN : reward.score(prompt.text(), text)));
      }
      out.add(new SampledPrompt(prompt, continuations));
    }
    return out;
  }

  private static void closeAll(List<AutoCloseable> held) {
    for (AutoCloseable c : held) {
      try {
        c.close();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
    held.clear();
  }
}
