package io.sparkdpo.distributed;

import io.sparkdpo.config.JobConfig;
import io.sparkdpo.config.PpoSettings;
import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.eval.RewardFunctions;
import io.sparkdpo.io.FolderLease;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import io.sparkdpo.model.ModelFolder;
import io.sparkdpo.train.Checkpoint;
import io.sparkdpo.train.CheckpointStore;
import io.sparkdpo.train.MetricsLog;
import io.sparkdpo.train.PpoTrainer;
import io.sparkdpo.train.PreparedData;
import io.sparkdpo.train.TrainerCheckpoint;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver side of {@code spark-dpo ppo}: check the policy, the prompts and the reward before any Spark job, plan
 * the run (TRL's arithmetic: {@code ceil(total_episodes / batch)} updates of {@link PpoSettings#rolloutBatch()}
 * prompts, or {@code max_steps}), run the barrier stage of {@code ppo.workers} replicas ({@link PpoWorkerTask};
 * W = 1 too) through {@link BarrierStageRunner}, and export the final checkpoint's policy as {@code RUN/model}
 * (Hugging Face causal-LM layout) with the value head beside it ({@code RUN/value_head.safetensors}). The policy
 * starts from {@code model.path} (pi_SFT), which is also the frozen reference of the KL penalty. Running it again on
 * the same run folder resumes from the newest valid checkpoint; on a finished run it does nothing ({@code upToDate}).
 * The run folder has one writer: the stage holds its {@link FolderLease} from run.json to the exported model.
 */
public final class PpoStage {
  private static final Logger LOG = LoggerFactory.getLogger(PpoStage.class);
  /** The run's value head, next to {@link TrainingStage#MODEL}. */
  public static final String VALUE_HEAD = PpoTrainer.VALUE_HEAD;

  private final SparkSession spark;
  private final JobConfig config;
  private RunMonitor.ProgressFactory progress = io.sparkdpo.train.ConsoleProgress::onStderr;
  private boolean replaceOtherRun;

  public PpoStage(SparkSession spark, JobConfig config) {
    this.spark = spark;
    this.config = config;
  }

  public PpoStage withProgress(RunMonitor.ProgressFactory factory) {
    this.progress = factory;
    return this;
  }

  /** A run folder holding a run with other settings is cleared and trained from scratch instead of refused. */
  public PpoStage replacingOtherRun() {
    this.replaceOtherRun = true;
    return this;
  }

  /** The plan and the checks, done on the driver before any Spark job. */
  PpoSpec plan(Storage storage) {
    PpoSettings s = config.ppo();
    String modelPath = config.model().path();
    ModelConfig policy = ModelFolder.configOf(storage, modelPath);
    if (policy.scoresSequences()) {
      throw new IllegalArgumentException("model.path " + modelPath + " is a " + policy.architecture() + " (a reward "
          + "model): PPO starts from a causal LM (pi_SFT); give the reward model as ppo.reward_model");
    }
    List<TextPrompts.Prompt> prompts = PpoPrompts.read(storage, s.prompts(), policy.vocabSize());
    String kind;
    String reward;
    String name;
    String policyTokenizer = PreparedData.tokenizerSpecOf(modelPath, storage);
    if (s.rewardModel() != null) {
      kind = PpoSpec.REWARD_MODEL;
      reward = s.rewardModel();
      name = reward;
      requireRewardModel(storage, reward, modelPath, policy, policyTokenizer);
    } else {
      kind = PpoSpec.ORACLE;
      reward = s.rewardOr(config.evaluate());
      name = "oracle:" + RewardFunctions.load(reward, storage).name();
      if (policyTokenizer == null) {
        throw new IllegalArgumentException("ppo.reward_model is null, so the oracle reward " + reward + " scores the "
            + "decoded text, but model.path " + modelPath + " has no tokenizer.json to decode with");
      }
    }
    int batch = Math.toIntExact(s.rolloutBatch());
    long episodes = s.totalEpisodes() != null ? s.totalEpisodes()
        : (long) Math.ceil(s.numTrainEpochs() * prompts.size());
    long updates = s.maxSteps() > 0 ? s.maxSteps() : (episodes + batch - 1) / batch;
    return new PpoSpec(config.model(), s, kind, reward, name, updates, batch, prompts.size(),
        s.prompts().stream().map(Storage::qualify).toList());
  }

  /**
   * The reward model must be a one-label classifier ({@code spark-dpo reward}'s export) reading the policy's token
   * ids: the same tokenizer files (by fingerprint), or, for folders without tokenizer files, the same vocabulary
   * size. Re-tokenising decoded text for a reward model with another tokenizer is not built: refused here.
   */
  private static void requireRewardModel(Storage storage, String rm, String modelPath, ModelConfig policy,
      String policyTokenizer) {
    ModelConfig c = ModelFolder.configOf(storage, rm);
    if (!c.scoresSequences()) {
      throw new IllegalArgumentException("ppo.reward_model " + rm + " is a " + c.architecture() + ", not a reward "
          + "model (*ForSequenceClassification with one label): train one with spark-dpo reward and give its "
          + "RUN/model");
    }
    c.asSequenceClassifier(); // a classifier without pad_token_id or with other than one label is refused here
    String rmTokenizer = PreparedData.tokenizerSpecOf(rm, storage);
    if (policyTokenizer != null && rmTokenizer != null) {
      String a = TextTokenizer.load(policyTokenizer, storage).fingerprint();
      String b = TextTokenizer.load(rmTokenizer, storage).fingerprint();
      if (!a.equals(b)) {
        throw new IllegalArgumentException("ppo.reward_model " + rm + " uses another tokenizer than model.path "
            + modelPath + " (fingerprints " + b.substring(0, 16) + " and " + a.substring(0, 16) + "): PPO scores the "
            + "policy's token ids, so the reward model must share its tokenizer (re-tokenising text is not built)");
      }
    } else if (policyTokenizer != null || rmTokenizer != null) {
      throw new IllegalArgumentException("ppo.reward_model " + rm + (rmTokenizer == null ? " has no" : " has a")
          + " tokenizer.json and model.path " + modelPath + (policyTokenizer == null ? " has none" : " has one")
          + ": cannot tell whether they share token ids");
    } else if (c.vocabSize() != policy.vocabSize()) {
      throw new IllegalArgumentException("ppo.reward_model " + rm + " has a vocabulary of " + c.vocabSize()
          + " tokens, model.path " + modelPath + " one of " + policy.vocabSize() + ": they do not share token ids");
    }
  }

  public TrainingStage.Result run() {
    Storage storage = new Storage(spark.sparkContext().hadoopConfiguration());
    PpoSettings s = config.ppo();
    String runDir = Storage.qualify(s.outputDir());
    PpoSpec spec = plan(storage);
    String runId = "ppo-" + UUID.randomUUID().toString().substring(0, 8);
    try (FolderLease lease = FolderLease.acquire(storage, runDir, runId, Duration.ofSeconds(s.leaseTimeoutS()))) {
      TrainingStage.requireSameRun(storage, runDir, spec, promptsFingerprint(storage, spec.promptFiles()), s.workers(),
          replaceOtherRun);
      String modelDir = Storage.join(runDir, TrainingStage.MODEL);
      if (finished(storage, runDir, spec.totalUpdates())) {
        LOG.info("ppo: {} is up to date (same settings and prompts, {} updates done, model exported): nothing to do",
            runDir, spec.totalUpdates());
        return new TrainingStage.Result(runDir, modelDir, spec.totalUpdates(), null, null, true);
      }
      List<List<String>> train = new ArrayList<>();
      List<List<String>> eval = new ArrayList<>();
      for (int r = 0; r < s.workers(); r++) {
        train.add(spec.promptFiles()); // every rank reads every prompt and samples its slice of each batch
        eval.add(List.of());
      }
      TrainingSchedule schedule = new TrainingSchedule(spec.totalUpdates(), s.loggingSteps(), 0, s.saveSteps(), 0);
      RunSpec run = new RunSpec("spark-dpo ppo", runId, runDir, new ShardPlan(train, eval), schedule, s.maxAttempts(),
          s.saveTotalLimit(), FaultPlan.NONE, RingSettings.of(s), s.restartOnCorruptCheckpoints(), s.leaseTimeoutS());
      LOG.info("ppo: {} prompts, {} worker(s), {} updates of {} responses ({} per worker), reward {} ({})",
          spec.prompts(), s.workers(), spec.totalUpdates(), spec.rolloutBatch(), spec.rolloutBatch() / s.workers(),
          spec.rewardName(), spec.rewardKind());
      RunOutcome outcome = new BarrierStageRunner(spark, run, new PpoWorkerTask(spec)).withProgress(progress)
          .withLease(lease).run();
      lease.requireHeld("export the final policy");
      export(storage, runDir, spec.totalUpdates());
      return new TrainingStage.Result(runDir, modelDir, spec.totalUpdates(), outcome, null, false);
    }
  }

  /** The last update is checkpointed and the policy and its value head exported in {@code model.save_dtype}. */
  private boolean finished(Storage storage, String runDir, long totalUpdates) {
    String model = Storage.join(runDir, TrainingStage.MODEL);
    if (!storage.exists(Storage.join(model, ModelFolder.GENERATION_CONFIG))
        || !storage.exists(Storage.join(runDir, VALUE_HEAD))
        || !storage.exists(Storage.join(runDir, MetricsLog.CONSOLIDATED))) {
      return false;
    }
    Optional<Checkpoint> last = new CheckpointStore(storage, runDir, null).latestValid();
    return last.isPresent() && last.get().step() == totalUpdates
        && ModelFolder.readConfig(storage, model).torchDtype().equals(config.model().saveDtype());
  }

  /**
   * {@code RUN/model}: the final checkpoint's policy (its float32 files verified as they are copied, or converted to
   * {@code model.save_dtype}), without the value head, which goes to {@code RUN/value_head.safetensors}. The model
   * is written first and its generation_config.json last, so a crash leaves an export {@link #finished} rejects.
   */
  private void export(Storage storage, String runDir, long totalUpdates) {
    Checkpoint last = new CheckpointStore(storage, runDir, null).open(totalUpdates);
    String out = Storage.join(runDir, TrainingStage.MODEL);
    storage.delete(out);
    storage.delete(Storage.join(runDir, VALUE_HEAD));
    if (config.model().saveDtype().equals("float32")) {
      TrainingStage.copyModelFiles(storage, last, out);
    } else {
      try (CausalLM m = CausalLM.load(TrainerCheckpoint.modelFolder(last), storage, CausalLM.device("cpu"))) {
        m.save(out, storage, CausalLM.saveDtype(config.model().saveDtype()));
      }
    }
    storage.writeBytes(Storage.join(runDir, VALUE_HEAD), last.read(PpoTrainer.VALUE_HEAD));
    LOG.info("ppo: policy of update {} exported to {}, value head to {}", totalUpdates, out, VALUE_HEAD);
  }

  /** The prompts' identity: every file's path and bytes, in order. */
  private static String promptsFingerprint(Storage storage, List<String> files) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      for (String f : files) {
        md.update(f.getBytes(StandardCharsets.UTF_8));
        md.update((byte) 0);
        md.update(storage.readBytes(f));
        md.update((byte) 0);
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The value head of a finished PPO run folder (for a caller that wants to go on from it). */
  public static String valueHead(String runDir) {
    return Storage.join(Storage.qualify(runDir), VALUE_HEAD);
  }
}
