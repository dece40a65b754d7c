package io.sparkdpo.distributed;

import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricNames;
import io.sparkdpo.train.MetricsWindow;
import io.sparkdpo.train.PayloadWriter;
import io.sparkdpo.train.TrainerCheckpoint;
import io.sparkdpo.train.TrainerStateLog;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Drives one rank's {@link Replica} through a run, identically on every rank, with no Spark inside (so it runs
 * in tests on an in-process ring):
 * <ol>
 *   <li>rank 0 picks the newest valid checkpoint (verifying its checksums: work done alone, see 4) and tells the
 *   others, so all ranks resume from the same one; each other rank verifies it again before loading it. When
 *   committed checkpoints exist and none verifies, the run stops naming them (unless
 *   {@code restart_on_corrupt_checkpoints}); checkpoints commit only while the run folder's lease names this
 *   run and attempt (see {@link WorkerContext#checkpoints()});</li>
 *   <li>the task builds its replica, which must stand at that checkpoint's step; the ranks compare parameter
 *   checksums before training;</li>
 *   <li>per step: fault injection, the replica's step (gradient all-reduce inside), metrics averaged over ranks
 *   and sent by rank 0; they also enter the logging window ({@link MetricsWindow}, on every rank alike), which
 *   rank 0 sends as the record to log every {@code logging_steps}; checksums compared on schedule and before every
 *   save; rank 0 writes checkpoints while the others wait (each rank's own state, e.g. its data cursor, is gathered
 *   to rank 0 first; the open logging window goes with them, {@link MetricsWindow#FILE}, and a resume reopens it);
 *   evaluation averaged likewise. Rank 0 keeps what transformers' {@code trainer_state.json} holds (the log
 *   history as the driver logs it, the best evaluation; {@link TrainerStateLog}), taken back from the checkpoint on
 *   a resume, and writes it into every checkpoint;</li>
 *   <li>work rank 0 does alone (verifying a checkpoint in 1, writing one in 3) runs inside
 *   {@link AllReduce#onRankZero}, not before a plain barrier: the other ranks wait up to the save timeout
 *   ({@code save_timeout_s}) instead of the ring's peer timeout, which a large checkpoint on S3 can outlast at
 *   every attempt. Rank 0 sends keepalives to its neighbours every few seconds meanwhile (as waiting ranks do),
 *   and the waiting ranks still fail within the peer timeout when they stop. Keepalives rather than TCP keepalive plus
 *   a long timeout: a dead rank-0 process closes its sockets anyway (noticed at once); what is left is a lost host,
 *   which TCP keepalive notices only after its idle time (2 h by default, tunable per socket only through
 *   {@code jdk.net} options), and a frozen process, which it never notices (the kernel still answers).</li>
 * </ol>
 */
public final class WorkerLoop {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerLoop.class);

  /** How the loop ended: steps done and the final (verified) parameter checksum. */
  public record Completed(long stepsDone, long checksum) {}

  private final WorkerContext ctx;
  private final WorkerTask task;
  private final Runnable interruptCheck;
  private volatile long step;
  /** Rank 0's trainer_state.json in the making; null on the other ranks. */
  private TrainerStateLog trainerState;

  /**
   * @param interruptCheck called once per step; throws when the task was killed (Spark's
   *     {@code TaskContext.killTaskIfInterrupted})
   */
  public WorkerLoop(WorkerContext ctx, WorkerTask task, Runnable interruptCheck) {
    this.ctx = ctx;
    this.task = task;
    this.interruptCheck = interruptCheck;
  }

  /** The step being taken (or the last one done); for failure reports. */
  public long step() {
    return step;
  }

  public Completed run() throws Exception {
    AllReduce group = ctx.allReduce();
    TrainingSchedule schedule = ctx.schedule();
    CheckpointStore store = ctx.checkpoints();
    Optional<Checkpoint> resume = agreeOnResume(group, store);
    if (ctx.rank() == 0) {
      TrainerStateLog.Arguments args = task.trainerArguments(ctx);
      trainerState = resume.isPresent()
          ? TrainerStateLog.resume(args, resume.get(), ctx.storage(), ctx.runDir()) : new TrainerStateLog(args);
    }
    try (Replica replica = task.start(ctx, resume)) {
      long start = replica.stepsDone();
      long expected = resume.map(Checkpoint::step).orElse(0L);
      if (start != expected) {
        throw new IllegalStateException("rank " + ctx.rank() + ": the replica reports " + start
            + " steps done, but it was started from " + resume.map(c -> "checkpoint " + c.dir()).orElse("scratch")
            + " (step " + expected + ")");
      }
      step = start;
      long checksum = ReplicaCheck.verify(group, start, replica.parameterChecksum());
      MetricsWindow window = openWindow(resume, start);
      ctx.metrics().started(start);
      LOG.info("rank {}/{} starts after step {} of {} (attempt {})", ctx.rank(), ctx.worldSize(), start,
          schedule.totalSteps(), ctx.attempt());
      for (long s = start + 1; s <= schedule.totalSteps(); s++) {
        step = s;
        interruptCheck.run();
        ctx.faults().beforeStep(s);
        Map<String, Double> metrics = MetricsMean.across(group, replica.trainStep(s));
        if (replica.stepsDone() != s) {
          throw new IllegalStateException("rank " + ctx.rank() + ": after step " + s + " the replica reports "
              + replica.stepsDone() + " steps done");
        }
        window.add(s, metrics);
        Map<String, Double> logged = schedule.logAfter(s) ? window.take() : null;
        if (ctx.rank() == 0) {
          ctx.metrics().step(s, metrics);
          // The log history holds the same window record the driver logs (every logging_steps and the last step).
          trainerState.step(s, logged != null ? logged : metrics, logged != null);
          if (logged != null) {
            ctx.metrics().log(s, logged);
          }
        }
        if (schedule.checksumAfter(s)) {
          checksum = ReplicaCheck.verify(group, s, replica.parameterChecksum());
        }
        if (schedule.evaluateAfter(s)) {
          evaluate(group, replica, s);
        }
        if (schedule.saveAfter(s)) {
          save(group, replica, store, s, window);
        }
      }
      ctx.metrics().finished(step, checksum);
      return new Completed(step, checksum);
    }
  }

  /**
   * Rank 0's newest valid checkpoint, broadcast, so every rank opens the same one; the others verify it too before
   * they load it (their reads, not rank 0's, are what they train from). Committed checkpoints of which none
   * verifies stop the run (not retryable: another attempt would find the same) unless a restart was asked for.
   */
  private Optional<Checkpoint> agreeOnResume(AllReduce group, CheckpointStore store) throws Exception {
    long[] newest = {-1};
    // Verifying reads every byte of the checkpoint: rank 0's work alone, with its own timeout.
    group.onRankZero(group.rank() != 0 ? null : () -> {
      try {
        newest[0] = store.resumePoint(ctx.restartOnCorruptCheckpoints()).map(Checkpoint::step).orElse(-1L);
      } catch (CheckpointStore.NoValidCheckpointException e) {
        throw new NonRetryableTrainingException(e.getMessage(), e);
      }
    });
    byte[] mine = group.rank() == 0 ? longBytes(newest[0]) : null;
    long step = ByteBuffer.wrap(group.broadcast(mine)).order(ByteOrder.LITTLE_ENDIAN).getLong();
    if (step < 0) {
      return Optional.empty();
    }
    Checkpoint checkpoint = store.open(step);
    if (group.rank() != 0) {
      checkpoint.verify();
    }
    return Optional.of(checkpoint);
  }

  private void evaluate(AllReduce group, Replica replica, long s) throws Exception {
    Map<String, Double> mean = MetricsMean.across(group, replica.evaluate(s));
    if (ctx.rank() == 0 && !mean.isEmpty()) {
      Map<String, Double> named = new TreeMap<>();
      mean.forEach((k, v) -> named.put(k.startsWith(MetricNames.EVAL) ? k : MetricNames.EVAL + k, v));
      ctx.metrics().eval(s, named);
      trainerState.evaluate(s, named);
    }
  }

  private void save(AllReduce group, Replica replica, CheckpointStore store, long s, MetricsWindow window)
      throws Exception {
    List<byte[]> rankStates = Arrays.asList(group.allGather(replica.rankState(s)));
    // No rank goes on before the checkpoint is committed, so a failure after step s always finds it. The wait is
    // held to the save timeout, not the peer timeout (class comment, 4).
    group.onRankZero(ctx.rank() != 0 ? null : () -> {
      Map<String, PayloadWriter> files = new LinkedHashMap<>(replica.checkpoint(s, rankStates));
      files.put(MetricsWindow.FILE, PayloadWriter.json(window.state()));
      List<Long> committed = store.committedSteps();
      PayloadWriter previous = files.put(TrainerCheckpoint.TRAINER_STATE,
          PayloadWriter.json(trainerState.state(s, n -> n == s || committed.contains(n))));
      if (previous != null) {
        throw new IllegalStateException("the replica's checkpoint holds " + TrainerCheckpoint.TRAINER_STATE
            + ", which the loop writes (transformers' TrainerState)");
      }
      String dir = store.save(s, files, trainerState.bestStep()).dir();
      ctx.metrics().checkpoint(s, dir);
    });
  }

  /**
   * The logging window the run stood in after step {@code start}: empty for a fresh run, the checkpoint's otherwise.
   * A checkpoint written before windows were kept has none: the window then restarts at the resume step and
   * {@code num_tokens} counts from there (said in the log).
   */
  private MetricsWindow openWindow(Optional<Checkpoint> resume, long start) {
    if (resume.isEmpty()) {
      return new MetricsWindow(start);
    }
    Checkpoint c = resume.get();
    if (!c.files().contains(MetricsWindow.FILE)) {
      if (ctx.rank() == 0) {
        LOG.warn("checkpoint {} holds no {} (an older run): the first logging window after the resume starts at step "
            + "{}, and num_tokens counts from there", c.dir(), MetricsWindow.FILE, start + 1);
      }
      return new MetricsWindow(start);
    }
    MetricsWindow window = MetricsWindow.restore(c.readJson(MetricsWindow.FILE, MetricsWindow.State.class));
    if (window.lastStep() != start) {
      throw new IllegalStateException(c.dir() + "/" + MetricsWindow.FILE + " holds the logging window after step "
          + window.lastStep() + ", but the checkpoint is of step " + start);
    }
    return window;
  }

  private static byte[] longBytes(long value) {
    return ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array();
  }
}
