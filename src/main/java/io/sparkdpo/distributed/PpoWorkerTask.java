package io.sparkdpo.distributed;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ValueHead;
import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.NonFiniteException;
import io.sparkdpo.train.PayloadWriter;
import io.sparkdpo.train.PpoTrainer;
import io.sparkdpo.train.PreparedData;
import io.sparkdpo.train.PromptOrder;
import io.sparkdpo.train.TrainerCheckpoint;
import io.sparkdpo.train.TrainingSession;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * PPO as a barrier task: each rank loads the policy (from the checkpoint on a resume), pi_SFT (frozen), the value
 * head and the reward, and {@link WorkerLoop} drives a {@link PpoTrainer} on the rank's
 * {@link WorkerContext#replicaGroup()}. One loop step is one update: a rollout batch and its PPO epochs. Ships only
 * the spec (JSON); one rank per executor JVM (DJL allows one gradient collector per JVM).
 */
public final class PpoWorkerTask implements WorkerTask {
  private static final long serialVersionUID = 1L;
  private final String specJson;

  public PpoWorkerTask(PpoSpec spec) {
    this.specJson = spec.toJson();
  }

  public PpoSpec spec() {
    return PpoSpec.fromJson(specJson);
  }

  @Override
  public Replica start(WorkerContext context, Optional<Checkpoint> resume) {
    return PpoReplica.open(spec(), context, resume);
  }

  /** Non-finite losses or gradients and bad data or settings fail again at the same update: not retryable. */
  @Override
  public boolean retryable(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof NonFiniteException || t instanceof IllegalArgumentException) {
        return false;
      }
    }
    return WorkerTask.super.retryable(failure);
  }

  /** One rank's models and trainer, seen through the loop's eyes. */
  static final class PpoReplica implements Replica {
    private final List<AutoCloseable> owned;
    private final PpoTrainer trainer;
    private final List<TextPrompts.Prompt> prompts;
    private final PromptOrder order;
    private final int batch;
    private Path scratch;

    private PpoReplica(List<AutoCloseable> owned, PpoTrainer trainer, List<TextPrompts.Prompt> prompts,
        PromptOrder order, int batch) {
      this.owned = owned;
      this.trainer = trainer;
      this.prompts = prompts;
      this.order = order;
      this.batch = batch;
    }

    static PpoReplica open(PpoSpec spec, WorkerContext ctx, Optional<Checkpoint> resume) {
      var storage = ctx.storage();
      var m = spec.model();
      Device device = DjlWorkerTask.device(m.device(), ctx.device());
      List<AutoCloseable> owned = new ArrayList<>();
      try {
        String policyFrom = resume.isPresent() ? TrainerCheckpoint.modelFolder(resume.get()) : m.path();
        CausalLM policy = CausalLM.load(policyFrom, storage, device, m.seed(), DataType.FLOAT32);
        owned.add(policy);
        CausalLM reference = CausalLM.load(m.path(), storage, device, m.seed(), DataType.FLOAT32);
        owned.add(reference);
        int hidden = policy.config().hiddenSize();
        ValueHead head = resume.isPresent()
            ? ValueHead.load(resume.get().path(PpoTrainer.VALUE_HEAD), storage, device, hidden)
            : ValueHead.create(policy, spec.ppo().seed());
        owned.add(head);
        List<TextPrompts.Prompt> prompts = PpoPrompts.read(storage, spec.promptFiles(),
            policy.config().vocabSize());
        if (prompts.size() != spec.prompts()) {
          throw new IllegalArgumentException("ppo.prompts hold " + prompts.size() + " prompts on rank " + ctx.rank()
              + ", the driver counted " + spec.prompts() + ": did the files change?");
        }
        PpoTrainer.BatchScorer scorer;
        if (spec.rewardKind().equals(PpoSpec.REWARD_MODEL)) {
          CausalLM rm = CausalLM.loadScorer(spec.reward(), storage, device, m.seed());
          owned.add(rm);
          scorer = PpoRewards.rewardModel(rm);
        } else {
          Map<int[], String> texts = new IdentityHashMap<>();
          prompts.forEach(p -> texts.put(p.ids(), p.text()));
          scorer = PpoRewards.oracle(RewardFunctions.load(spec.reward(), storage),
              TextTokenizer.load(PreparedData.tokenizerSpecOf(m.path(), storage), storage), texts);
        }
        PpoTrainer trainer = new PpoTrainer(policy, head, reference, scorer, spec.trainerSettings(),
            spec.totalUpdates(), ctx.replicaGroup());
        owned.add(0, trainer); // closed first
        if (resume.isPresent()) {
          trainer.restore(resume.get());
        }
        return new PpoReplica(owned, trainer, prompts, new PromptOrder(prompts.size(), spec.ppo().seed()),
            spec.rolloutBatch());
      } catch (RuntimeException | Error e) {
        closeAll(owned);
        throw e;
      }
    }

    @Override
    public long stepsDone() {
      return trainer.updates();
    }

    @Override
    public LocalMetrics trainStep(long step) {
      if (step != trainer.updates() + 1) {
        throw new IllegalArgumentException("update " + step + " requested, but " + trainer.updates() + " are done");
      }
      long start = System.nanoTime();
      List<int[]> ids = new ArrayList<>(batch);
      for (int i : order.batch(step - 1, batch)) {
        ids.add(prompts.get(i).ids());
      }
      Map<String, Double> metrics = new LinkedHashMap<>(trainer.update(ids).metrics());
      metrics.put(TrainingSession.STEP_SECONDS, (System.nanoTime() - start) / 1e9);
      return LocalMetrics.of(metrics);
    }

    @Override
    public long parameterChecksum() {
      ParameterDigest digest = new ParameterDigest();
      for (NDArray p : trainer.parameterArrays()) {
        digest.update(p);
      }
      return digest.value();
    }

    @Override
    public Map<String, PayloadWriter> checkpoint(long step, List<byte[]> rankStates) {
      if (step != trainer.updates()) {
        throw new IllegalArgumentException("checkpoint of update " + step + " requested after update "
            + trainer.updates());
      }
      deleteScratch();
      try {
        scratch = Files.createTempDirectory("spark-dpo-ppo-checkpoint-");
      } catch (IOException e) {
        throw new UncheckedIOException("cannot stage checkpoint " + step + ": " + e.getMessage(), e);
      }
      return trainer.checkpoint(scratch);
    }

    private void deleteScratch() {
      if (scratch == null) {
        return;
      }
      TrainerCheckpoint.deleteStaging(scratch);
      scratch = null;
    }

    @Override
    public void close() {
      try {
        deleteScratch();
      } finally {
        closeAll(owned);
      }
    }

    private static void closeAll(List<AutoCloseable> owned) {
      RuntimeException first = null;
      for (AutoCloseable c : owned) {
        try {
          c.close();
        } catch (Exception e) {
          if (first == null) {
            first = e instanceof RuntimeException r ? r : new IllegalStateException(e);
          }
        }
      }
      owned.clear();
      if (first != null) {
        throw first;
      }
    }
  }
}
