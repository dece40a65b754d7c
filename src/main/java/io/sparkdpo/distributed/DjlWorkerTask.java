package io.sparkdpo.distributed;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import io.sparkdpo.config.OptimizationSettings;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.DataCursor;
import io.sparkdpo.train.NonFiniteException;
import io.sparkdpo.train.PayloadWriter;
import io.sparkdpo.train.SessionSpec;
import io.sparkdpo.train.TrainerStateLog;
import io.sparkdpo.train.TrainingSession;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The DJL trainer as a barrier task: each rank opens a {@link TrainingSession} (SFT or DPO) on its shards, with the
 * rank's all-reduce as the gradient reducer, and {@link WorkerLoop} drives it. Ships only the session spec (JSON);
 * models and data load on the executor. One rank per executor JVM (DJL allows one gradient collector per JVM).
 */
public final class DjlWorkerTask implements WorkerTask {
  private static final long serialVersionUID = 1L;
  private final String specJson;

  public DjlWorkerTask(SessionSpec spec) {
    this.specJson = spec.toJson();
  }

  public SessionSpec spec() {
    return SessionSpec.fromJson(specJson);
  }

  @Override
  public Replica start(WorkerContext context, Optional<Checkpoint> resume) {
    SessionSpec spec = spec();
    Device device = device(spec.model().device(), context.device());
    TrainingSession<?> session = TrainingSession.open(spec, context.storage(), device, context.shards(),
        context.evalShards(), context.gradientReducer(), resume);
    try {
      trainerArguments(context).requireBestMetricAmong(session.evaluationMetricNames(), section(spec));
    } catch (RuntimeException e) {
      session.close();
      throw e;
    }
    return new SessionReplica(session);
  }

  /**
   * The run's settings under transformers' names: {@code per_device_train_batch_size}, the epochs the run covers
   * ({@code ceil(num_train_epochs)}, or with {@code max_steps} the epochs those steps reach into, as the Trainer
   * counts them), {@code metric_for_best_model}, {@code greater_is_better} and {@code output_dir}.
   */
  @Override
  public TrainerStateLog.Arguments trainerArguments(WorkerContext context) {
    SessionSpec spec = spec();
    OptimizationSettings s = spec.optimization();
    TrainingSchedule schedule = context.schedule();
    long examplesSeen = spec.totalSteps() * spec.examplesPerReplicaStep() * context.worldSize();
    int epochs = (int) (s.maxSteps() > 0 ? (examplesSeen + spec.trainExamples() - 1) / spec.trainExamples()
        : Math.ceil(s.numTrainEpochs()));
    return new TrainerStateLog.Arguments(schedule.loggingSteps(), schedule.evalSteps(), schedule.saveSteps(),
        schedule.totalSteps(), s.perDeviceTrainBatchSize(), epochs, s.metricForBestModel(), s.greaterIsBetter(),
        s.outputDir());
  }

  private static String section(SessionSpec spec) {
    return spec.stage() == SessionSpec.Stage.SFT ? "sft" : "train";
  }

  /**
   * Non-finite losses or gradients and bad data or settings ({@link IllegalArgumentException}) fail again at the same
   * step after a resubmission: not retryable.
   */
  @Override
  public boolean retryable(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof NonFiniteException || t instanceof IllegalArgumentException) {
        return false;
      }
    }
    return WorkerTask.super.retryable(failure);
  }

  /**
   * {@code model.device} {@code cpu}: the CPU; {@code gpu}: the GPU Spark assigned this task ({@code gpu:N});
   * {@code gpu:N}: that GPU.
   */
  static Device device(String modelDevice, String taskDevice) {
    if (modelDevice.equals("gpu")) {
      if (!taskDevice.startsWith("gpu:")) {
        throw new IllegalStateException("model.device=gpu, but Spark assigned this task no GPU: set "
            + "spark.task.resource.gpu.amount=1 and spark.executor.resource.gpu.amount=1 (docs/gpu.md)");
      }
      return Device.gpu(Integer.parseInt(taskDevice.substring(4)));
    }
    return CausalLM.device(modelDevice);
  }

  /** The session seen through the loop's eyes. */
  private static final class SessionReplica implements Replica {
    private final TrainingSession<?> session;

    SessionReplica(TrainingSession<?> session) {
      this.session = session;
    }

    @Override
    public long stepsDone() {
      return session.stepsDone();
    }

    @Override
    public LocalMetrics trainStep(long step) {
      TrainingSession.Outcome o = session.step(step);
      return new LocalMetrics(o.items(), o.metrics());
    }

    @Override
    public LocalMetrics evaluate(long step) {
      TrainingSession.Outcome o = session.evaluate();
      return new LocalMetrics(o.items(), o.metrics());
    }

    @Override
    public long parameterChecksum() {
      ParameterDigest digest = new ParameterDigest();
      for (NDArray p : session.parameterArrays()) {
        digest.update(p);
      }
      return digest.value();
    }

    @Override
    public byte[] rankState(long step) {
      return session.cursor().toJson();
    }

    @Override
    public Map<String, PayloadWriter> checkpoint(long step, List<byte[]> rankStates) {
      return session.checkpoint(step, DataCursor.merge(rankStates));
    }

    @Override
    public void close() {
      session.close();
    }
  }
}
