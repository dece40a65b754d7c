package io.sparkdpo.distributed;

import io.sparkdpo.config.LrSchedulerType;
import io.sparkdpo.io.Storage;
import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.DataCursor;
import io.sparkdpo.train.LearningRateSchedule;
import io.sparkdpo.train.OptimizerState;
import io.sparkdpo.train.PayloadWriter;
import io.sparkdpo.train.SeededRng;
import io.sparkdpo.train.ShardCursor;
import io.sparkdpo.train.ShardSampler;
import io.sparkdpo.train.TrainerCheckpoint;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A real (small) data-parallel trainer for testing the distributed machinery without DJL: multi-output linear
 * regression, {@code W} of K x D floats, on the rank's own shards read through {@link Storage}
 * (evaluation: mean loss over its eval shards, weighted by rows). Each step takes
 * {@code rowsPerShard} rows from each of its shards (seeded per-shard shuffles that continue over epochs), sums
 * the squared-error gradient, scales it to the global-batch mean, all-reduces it, clips it by global norm and
 * applies AdamW with torch's formulas in float32, at the rate of a warmup + linear schedule. Checkpoints hold the
 * trainer's files ({@code optimizer.safetensors}, {@code spark_dpo_state.json} with the merged data cursor of every
 * rank) beside its weights ({@code model/weights.f32}), so a resume continues bit for bit.
 *
 * <p>For tests only, {@code divergeRank}/{@code divergeStep} shift one parameter of one rank by 1e-3 after
 * that step: the replicas then differ, which the checksum must catch.
 */
final class SyntheticRegressionTask implements WorkerTask {
  private static final long serialVersionUID = 1L;
  static final String WEIGHTS = TrainerCheckpoint.MODEL + "/weights.f32";

  final int inputs;
  final int outputs;
  final int rowsPerShard;
  final boolean ownJvm;
  final int divergeRank;
  final long divergeStep;
  final double learningRate = 0.05;
  final double weightDecay = 0.01;
  final double maxGradNorm = 5.0;
  final long warmupSteps = 3;
  final long seed = 7;

  SyntheticRegressionTask(int inputs, int outputs, int rowsPerShard, boolean ownJvm, int divergeRank,
      long divergeStep) {
    this.inputs = inputs;
    this.outputs = outputs;
    this.rowsPerShard = rowsPerShard;
    this.ownJvm = ownJvm;
    this.divergeRank = divergeRank;
    this.divergeStep = divergeStep;
  }

  /** 64 inputs, 64 outputs (4096 parameters), 4 rows per shard per step, no divergence. */
  static SyntheticRegressionTask standard(boolean ownJvm) {
    return new SyntheticRegressionTask(64, 64, 4, ownJvm, -1, 0);
  }

  SyntheticRegressionTask divergingAt(int rank, long step) {
    return new SyntheticRegressionTask(inputs, outputs, rowsPerShard, ownJvm, rank, step);
  }

  @Override
  public boolean needsOwnJvm() {
    return ownJvm;
  }

  @Override
  public Replica start(WorkerContext context, Optional<Checkpoint> resume) {
    return new SyntheticReplica(this, context, resume);
  }

  /** The parameters saved in checkpoint {@code step} of a run. */
  static float[] weightsAt(String runDir, long step) {
    Checkpoint c = new CheckpointStore(Storage.local(), runDir, null).open(step);
    return floats(c.read(WEIGHTS));
  }

  static float[] floats(byte[] bytes) {
    float[] out = new float[bytes.length / 4];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }

  static byte[] bytes(float[] values) {
    ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    buf.asFloatBuffer().put(values);
    return buf.array();
  }

  static String shardName(String path) {
    return path.substring(path.lastIndexOf('/') + 1);
  }

  private static final class SyntheticReplica implements Replica {
    private final SyntheticRegressionTask cfg;
    private final WorkerContext ctx;
    private final List<SyntheticShards.Shard> shards = new ArrayList<>();
    private final List<SyntheticShards.Shard> evalShards = new ArrayList<>();
    private final List<ShardSampler> samplers = new ArrayList<>();
    private final LearningRateSchedule schedule;
    private final float[] w;
    private final float[] m;
    private final float[] v;
    private long steps;

    SyntheticReplica(SyntheticRegressionTask cfg, WorkerContext ctx, Optional<Checkpoint> resume) {
      this.cfg = cfg;
      this.ctx = ctx;
      this.schedule = new LearningRateSchedule(LrSchedulerType.LINEAR, cfg.learningRate, cfg.warmupSteps,
          ctx.schedule().totalSteps());
      int params = cfg.inputs * cfg.outputs;
      for (String path : ctx.shards()) {
        shards.add(SyntheticShards.read(ctx.storage(), path));
      }
      for (String path : ctx.evalShards()) {
        evalShards.add(SyntheticShards.read(ctx.storage(), path));
      }
      if (resume.isPresent()) {
        Checkpoint c = resume.get();
        TrainerCheckpoint.State state = TrainerCheckpoint.readState(c);
        if (!state.schedule().equals(schedule)) {
          throw new IllegalStateException("the checkpoint's schedule " + state.schedule() + " differs from "
              + schedule);
        }
        OptimizerState opt = TrainerCheckpoint.readOptimizer(c);
        w = floats(c.read(WEIGHTS));
        m = opt.tensors().get("w.exp_avg").data();
        v = opt.tensors().get("w.exp_avg_sq").data();
        steps = state.step();
        for (int i = 0; i < shards.size(); i++) {
          samplers.add(new ShardSampler(state.data().shard(shardName(ctx.shards().get(i))), shards.get(i).rows()));
        }
      } else {
        SeededRng init = new SeededRng(cfg.seed);
        w = new float[params];
        for (int i = 0; i < params; i++) {
          w[i] = (float) ((init.nextDouble() * 2 - 1) * 0.1);
        }
        m = new float[params];
        v = new float[params];
        for (int i = 0; i < shards.size(); i++) {
          String name = shardName(ctx.shards().get(i));
          samplers.add(new ShardSampler(ShardCursor.start(name, shards.get(i).rows(),
              SeededRng.derive(cfg.seed, name.hashCode())), shards.get(i).rows()));
        }
      }
      if (w.length != params) {
        throw new IllegalStateException("checkpoint holds " + w.length + " parameters, expected " + params);
      }
    }

    @Override
    public long stepsDone() {
      return steps;
    }

    @Override
    public LocalMetrics trainStep(long step) {
      float[] g = new float[w.length];
      double loss = 0;
      int rows = 0;
      for (int i = 0; i < shards.size(); i++) {
        SyntheticShards.Shard shard = shards.get(i);
        for (int row : samplers.get(i).next(cfg.rowsPerShard)) {
          loss += accumulate(shard, row, g);
          rows++;
        }
      }
      // Replicas sum their own rows; the all-reduce averages over replicas, hence the world size.
      long globalRows = (long) rows * ctx.worldSize();
      float scale = (float) ((double) ctx.worldSize() / globalRows);
      for (int i = 0; i < g.length; i++) {
        g[i] *= scale;
      }
      ctx.gradientReducer().allReduceMean(FloatBuffer.wrap(g));
      double sumSq = 0;
      for (float x : g) {
        sumSq += (double) x * x;
      }
      float norm = (float) Math.sqrt(sumSq);
      float coef = (float) cfg.maxGradNorm / (norm + 1e-6f);
      if (coef < 1f) {
        for (int i = 0; i < g.length; i++) {
          g[i] *= coef;
        }
      }
      double lr = schedule.at(steps);
      adamW(g, lr);
      steps++;
      if (ctx.rank() == cfg.divergeRank && step == cfg.divergeStep) {
        w[0] += 1e-3f; // a one-ulp nudge can be rounded away by the next identical updates; this one persists
      }
      double epoch = (double) samplers.get(0).cursor().totalConsumed() / shards.get(0).rows();
      return LocalMetrics.of(Map.of("loss", loss / rows, "grad_norm", (double) norm, "learning_rate", lr,
          "epoch", epoch));
    }

    /** Adds the row's squared-error gradient to {@code g}; returns its loss. */
    private double accumulate(SyntheticShards.Shard shard, int row, float[] g) {
      int d = cfg.inputs;
      double loss = 0;
      for (int k = 0; k < cfg.outputs; k++) {
        float pred = 0;
        for (int j = 0; j < d; j++) {
          pred += w[k * d + j] * shard.x(row, j);
        }
        float err = pred - shard.y(row, k);
        loss += 0.5 * err * err;
        for (int j = 0; j < d; j++) {
          g[k * d + j] += err * shard.x(row, j);
        }
      }
      return loss;
    }

    /** torch.optim.AdamW's single-tensor step, in float32. */
    private void adamW(float[] g, double lr) {
      long t = steps + 1;
      double b1 = 0.9;
      double b2 = 0.999;
      float bc1 = (float) (1 - Math.pow(b1, t));
      float bc2Sqrt = (float) Math.sqrt(1 - Math.pow(b2, t));
      float decay = (float) (1 - lr * cfg.weightDecay);
      float stepSize = (float) lr / bc1;
      for (int i = 0; i < w.length; i++) {
        w[i] *= decay;
        m[i] = (float) b1 * m[i] + (float) (1 - b1) * g[i];
        v[i] = (float) b2 * v[i] + (float) (1 - b2) * g[i] * g[i];
        float denom = (float) Math.sqrt(v[i]) / bc2Sqrt + 1e-8f;
        w[i] += -stepSize * m[i] / denom;
      }
    }

    @Override
    public LocalMetrics evaluate(long step) {
      float[] unused = new float[w.length];
      double loss = 0;
      int rows = 0;
      for (SyntheticShards.Shard shard : evalShards) {
        for (int row = 0; row < shard.rows(); row++) {
          loss += accumulate(shard, row, unused);
          rows++;
        }
      }
      return new LocalMetrics(rows, Map.of("loss", rows == 0 ? 0 : loss / rows));
    }

    @Override
    public long parameterChecksum() {
      return ParameterDigest.of(w);
    }

    @Override
    public byte[] rankState(long step) {
      List<ShardCursor> mine = new ArrayList<>();
      for (ShardSampler s : samplers) {
        mine.add(s.cursor());
      }
      return new DataCursor(mine).toJson();
    }

    @Override
    public Map<String, PayloadWriter> checkpoint(long step, List<byte[]> rankStates) {
      DataCursor all = DataCursor.merge(rankStates);
      LinkedHashMap<String, OptimizerState.Tensor> moments = new LinkedHashMap<>();
      moments.put("w.exp_avg", new OptimizerState.Tensor(new long[] {w.length}, m.clone()));
      moments.put("w.exp_avg_sq", new OptimizerState.Tensor(new long[] {w.length}, v.clone()));
      OptimizerState opt = new OptimizerState(steps, moments);
      double epoch = (double) samplers.get(0).cursor().totalConsumed() / shards.get(0).rows();
      Map<String, PayloadWriter> files = new LinkedHashMap<>();
      files.put(WEIGHTS, PayloadWriter.bytes(bytes(w)));
      files.put(TrainerCheckpoint.OPTIMIZER, opt::write);
      files.put(TrainerCheckpoint.STATE, PayloadWriter.json(new TrainerCheckpoint.State(steps, epoch, schedule, all,
          new SeededRng(cfg.seed).state())));
      return files;
    }

    @Override
    public void close() {
      // Nothing native to free.
    }
  }
}
