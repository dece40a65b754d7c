package io.sparkdpo.train;

import io.sparkdpo.io.Storage;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What transformers' {@code trainer_state.json} ({@link HfTrainerState}) needs from a run as it goes, kept by the
 * process that saves checkpoints (rank 0): the log history (each logged train record and each evaluation, as
 * {@code metrics.jsonl} records them), the epoch of the last step, and the best evaluation after the Trainer's rules:
 * {@code metric_for_best_model} is looked up as {@code eval_<name>} (unless already so prefixed), a value strictly
 * better than the best so far (greater with {@code greater_is_better}, else smaller) becomes the best, and
 * {@code best_model_checkpoint} names the best step's {@code checkpoint-N} once that checkpoint exists.
 *
 * <p>A resumed run takes the history, best metric and best checkpoint back from the checkpoint's trainer_state.json;
 * from a checkpoint of the earlier layout (none there) it rebuilds them from the run's metrics log up to that step.
 */
public final class TrainerStateLog {

  /**
   * The Trainer arguments the state records.
   *
   * @param trainBatchSize {@code per_device_train_batch_size}; null when the task has none
   * @param numTrainEpochs whole epochs the run covers (transformers': {@code ceil(num_train_epochs)}, or with
   *     {@code max_steps} the epochs those steps touch)
   * @param metricForBestModel the evaluation metric that picks the best checkpoint ({@code loss} or
   *     {@code eval_loss} style); null: none tracked
   * @param greaterIsBetter null: false for a metric ending in {@code loss}, else true (transformers' default)
   * @param outputDir the run folder as configured, prefix of {@code best_model_checkpoint}
   */
  public record Arguments(int loggingSteps, int evalSteps, int saveSteps, long maxSteps, Integer trainBatchSize,
                          int numTrainEpochs, String metricForBestModel, Boolean greaterIsBetter, String outputDir)
      implements Serializable {

    /** The key the best metric is read under in an evaluation entry; null without one. */
    public String bestMetricKey() {
      if (metricForBestModel == null) {
        return null;
      }
      return metricForBestModel.startsWith(EVAL_PREFIX) ? metricForBestModel : EVAL_PREFIX + metricForBestModel;
    }

    public boolean greaterIsBetterResolved() {
      return greaterIsBetter != null ? greaterIsBetter : !metricForBestModel.endsWith("loss");
    }

    /**
     * Fails naming the setting when {@code metric_for_best_model} is not among the evaluation's metric names
     * (unprefixed, as an objective reports them): before step 1 rather than at the first evaluation.
     */
    public void requireBestMetricAmong(Collection<String> evalMetrics, String section) {
      String key = bestMetricKey();
      if (key != null && !evalMetrics.contains(key.substring(EVAL_PREFIX.length()))) {
        throw new IllegalArgumentException(section + ".metric_for_best_model is '" + metricForBestModel
            + "', but evaluation reports " + new java.util.TreeSet<>(evalMetrics) + " (looked up with the eval_ "
            + "prefix, as transformers does): pick one of those, or null to track no best checkpoint");
      }
    }
  }

  /** transformers' evaluation key prefix ({@code metric_key_prefix="eval"}). */
  public static final String EVAL_PREFIX = "eval_";

  private final Arguments args;
  private final List<Map<String, Object>> history = new ArrayList<>();
  private final Map<Long, Double> epochs = new HashMap<>();
  private Double epoch;
  private Double bestMetric;
  private Long bestStep;
  private String bestCheckpoint;

  public TrainerStateLog(Arguments args) {
    this.args = args;
  }

  /**
   * The state of a resumed run after {@code checkpoint}'s step: from its trainer_state.json, or for an earlier-layout
   * checkpoint from the run's metrics log ({@link MetricsLog#readAll}) up to that step.
   */
  public static TrainerStateLog resume(Arguments args, Checkpoint checkpoint, Storage storage, String runDir) {
    TrainerStateLog log = new TrainerStateLog(args);
    if (!TrainerCheckpoint.isLegacy(checkpoint) && checkpoint.files().contains(TrainerCheckpoint.TRAINER_STATE)) {
      HfTrainerState s = checkpoint.readJson(TrainerCheckpoint.TRAINER_STATE, HfTrainerState.class);
      if (s.globalStep() != checkpoint.step()) {
        throw new CheckpointException("checkpoint file " + checkpoint.path(TrainerCheckpoint.TRAINER_STATE)
            + " holds global_step " + s.globalStep() + ", expected " + checkpoint.step());
      }
      s.logHistory().forEach(e -> log.history.add(new TreeMap<>(e)));
      log.epoch = s.epoch();
      log.bestMetric = s.bestMetric();
      log.bestStep = s.bestGlobalStep();
      log.bestCheckpoint = s.bestModelCheckpoint();
      return log;
    }
    for (Map<String, Object> record : MetricsLog.readAll(storage, runDir)) {
      long step = ((Number) record.get(MetricNames.STEP)).longValue();
      if (step > checkpoint.step()) {
        continue;
      }
      Map<String, Double> values = new TreeMap<>();
      record.forEach((k, v) -> {
        if (!k.equals(MetricNames.STEP) && v instanceof Number n) {
          values.put(k, n.doubleValue());
        }
      });
      if (values.keySet().stream().anyMatch(k -> k.startsWith(MetricNames.EVAL))) {
        log.evaluate(step, values);
      } else {
        log.step(step, values, true);
      }
    }
    return log;
  }

  /** After train step {@code step}: remembers its epoch, and adds its record to the history when it is logged. */
  public void step(long step, Map<String, Double> metrics, boolean logged) {
    Double e = metrics.get(MetricNames.EPOCH);
    if (e != null) {
      epoch = e;
      epochs.put(step, e);
    }
    if (logged) {
      Map<String, Object> entry = new TreeMap<>(metrics);
      entry.put(MetricNames.STEP, step);
      history.add(entry);
    }
  }

  /**
   * After the evaluation of step {@code step} ({@code eval/x} metrics, as the metrics log holds them): adds the entry
   * ({@code eval_x}, {@code epoch}, {@code step}) and updates the best metric.
   */
  public void evaluate(long step, Map<String, Double> evalMetrics) {
    Map<String, Object> entry = new TreeMap<>();
    evalMetrics.forEach((k, v) -> entry.put(hfKey(k), v));
    Double e = epochs.getOrDefault(step, epoch);
    if (e != null) {
      entry.put(MetricNames.EPOCH, e);
    }
    entry.put(MetricNames.STEP, step);
    history.add(entry);
    String key = args.bestMetricKey();
    if (key == null) {
      return;
    }
    Object value = entry.get(key);
    if (!(value instanceof Double v)) {
      throw new IllegalArgumentException("metric_for_best_model is '" + args.metricForBestModel() + "', but the "
          + "evaluation after step " + step + " reports no " + key + " (it has " + entry.keySet() + ")");
    }
    boolean better = bestMetric == null || (args.greaterIsBetterResolved() ? v > bestMetric : v < bestMetric);
    if (better) {
      bestMetric = v;
      bestStep = step;
    }
  }

  /** transformers' name of a metric: {@code eval/x} becomes {@code eval_x}, anything else stays. */
  public static String hfKey(String key) {
    return key.startsWith(MetricNames.EVAL) ? EVAL_PREFIX + key.substring(MetricNames.EVAL.length()) : key;
  }

  /** The step of the best evaluation so far; null when none is tracked or none happened. */
  public Long bestStep() {
    return bestStep;
  }

  /**
   * The state to save with checkpoint {@code step}.
   *
   * @param checkpointExists whether checkpoint {@code s} is committed (or is the one being saved): the best step's
   *     folder becomes {@code best_model_checkpoint} only then, as the Trainer names it only when it exists
   */
  public HfTrainerState state(long step, java.util.function.LongPredicate checkpointExists) {
    if (bestStep != null && checkpointExists.test(bestStep)) {
      bestCheckpoint = Storage.join(args.outputDir(), CheckpointStore.PREFIX + bestStep);
    }
    return new HfTrainerState(bestStep, bestMetric, bestCheckpoint, epoch, args.evalSteps(), step, false, true, true,
        List.copyOf(history), args.loggingSteps(), args.maxSteps(), 0, args.numTrainEpochs(), args.saveSteps(),
        HfTrainerState.controlAtSave(step == args.maxSteps()), 0.0, args.trainBatchSize(), null, null);
  }
}
