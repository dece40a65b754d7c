package io.sparkdpo.distributed;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.DataCursor;
import io.sparkdpo.train.NonFiniteException;
import io.sparkdpo.train.PayloadWriter;
import io.sparkdpo.train.SessionSpec;
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
    return new SessionReplica(session);
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
