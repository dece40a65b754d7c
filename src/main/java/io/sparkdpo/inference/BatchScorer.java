package io.sparkdpo.inference;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.distributed.TaskDevice;
import io.sparkdpo.eval.RewardFunction;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.NoGrad;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.SerializableConfiguration;

/**
 * The executor side of {@link TextScorer}: each {@link ScoreBatch} is one right-padded forward pass of the JVM's
 * cached reward model ({@link ExecutorModels}, loaded once per executor JVM; no autograd graph), its scores read at
 * each row's last non-padding token ({@link CausalLM#scores}), or one call of the reward function per row (loaded
 * once per JVM too). Batches are cut by the driver, so scores do not depend on the partitioning.
 */
final class BatchScorer implements FlatMapFunction<Iterator<ScoreBatch>, ScoreBatch.Scored> {
  private static final Map<String, RewardFunction> REWARDS = new ConcurrentHashMap<>();

  private final ModelSpec model;
  private final String reward;
  private final Broadcast<SerializableConfiguration> conf;
  private final ExecutorStats stats;

  /** Exactly one of {@code model} (a reward model) and {@code reward} (a reward function spec) is non-null. */
  BatchScorer(ModelSpec model, String reward, Broadcast<SerializableConfiguration> conf, ExecutorStats stats) {
    if ((model == null) == (reward == null)) {
      throw new IllegalArgumentException("score with a reward model or a reward function, exactly one");
    }
    this.model = model;
    this.reward = reward;
    this.conf = conf;
    this.stats = stats;
  }

  @Override
  public Iterator<ScoreBatch.Scored> call(Iterator<ScoreBatch> batches) {
    stats.taskRan();
    if (!batches.hasNext()) {
      return List.<ScoreBatch.Scored>of().iterator();
    }
    Configuration hadoop = conf.value().value();
    List<ScoreBatch.Scored> out = new ArrayList<>();
    if (reward != null) {
      RewardFunction f = REWARDS.computeIfAbsent(reward, spec -> RewardFunctions.load(spec, new Storage(hadoop)));
      while (batches.hasNext()) {
        ScoreBatch b = batches.next();
        double[] s = new double[b.rows().length];
        for (int i = 0; i < s.length; i++) {
          s[i] = f.score(b.prompts()[i], b.continuations()[i]);
        }
        out.add(new ScoreBatch.Scored(b.rows(), s));
      }
      return out.iterator();
    }
    try (ExecutorModels.Lease lease = ExecutorModels.acquire(model, TaskDevice.forCurrentTask(model.device()),
        hadoop)) {
      stats.modelUsed(lease.loadedNow());
      while (batches.hasNext()) {
        ScoreBatch b = batches.next();
        out.add(new ScoreBatch.Scored(b.rows(), scores(lease.model(), b.ids())));
      }
    }
    return out.iterator();
  }

  /** One right-padded forward pass: the reward model's score of each row. */
  static double[] scores(CausalLM rm, int[][] rows) {
    int length = 1;
    for (int[] r : rows) {
      length = Math.max(length, r.length);
    }
    int[] ids = new int[rows.length * length];
    Arrays.fill(ids, rm.config().padTokenId());
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(rows[i], 0, ids, i * length, rows[i].length);
    }
    try (NoGrad ignored = NoGrad.enter();
         NDManager manager = NDManager.newBaseManager(rm.device(), "PyTorch")) {
      NDArray input = manager.create(ids, new Shape(rows.length, length));
      float[] s = rm.scores(input, false).toFloatArray();
      double[] out = new double[s.length];
      for (int i = 0; i < s.length; i++) {
        out[i] = s[i];
      }
      return out;
    }
  }
}
