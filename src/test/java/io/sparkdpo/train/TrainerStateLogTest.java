package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerStateLogTest {
  @TempDir
  Path dir;

  /** The field set of transformers 4.56's TrainerState dataclass: load_from_json fails on any other key. */
  static final Set<String> TRAINER_STATE_FIELDS = new TreeSet<>(List.of("epoch", "global_step", "max_steps",
      "logging_steps", "eval_steps", "save_steps", "train_batch_size", "num_train_epochs", "num_input_tokens_seen",
      "total_flos", "log_history", "best_metric", "best_global_step", "best_model_checkpoint", "is_local_process_zero",
      "is_world_process_zero", "is_hyper_param_search", "trial_name", "trial_params", "stateful_callbacks"));

  private static TrainerStateLog.Arguments args(String metric, Boolean greater) {
    return new TrainerStateLog.Arguments(1, 2, 2, 4, 8, 3, metric, greater, "runs/dpo");
  }

  private static Map<String, Double> train(double loss, double epoch) {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put(MetricNames.LOSS, loss);
    m.put(MetricNames.EPOCH, epoch);
    return m;
  }

  private static Map<String, Double> eval(double loss, double accuracy) {
    return Map.of("eval/loss", loss, "eval/rewards/accuracies", accuracy);
  }

  @Test
  void writesEveryTrainerStateFieldAndRenamesEvaluationKeysAsTransformersLogsThem() throws Exception {
    TrainerStateLog log = new TrainerStateLog(args("loss", null));
    log.step(1, train(0.69, 0.25), true);
    log.step(2, train(0.60, 0.5), false);
    log.evaluate(2, eval(0.65, 0.5));
    HfTrainerState s = log.state(2, step -> true);
    Map<?, ?> json = Json.MAPPER.readValue(Json.MAPPER.writeValueAsBytes(s), Map.class);
    assertEquals(TRAINER_STATE_FIELDS, new TreeSet<>(json.keySet().stream().map(Object::toString).toList()));
    assertEquals(List.of(Map.of("loss", 0.69, "epoch", 0.25, "step", 1),
        Map.of("eval_loss", 0.65, "eval_rewards/accuracies", 0.5, "epoch", 0.5, "step", 2)), json.get("log_history"));
    assertEquals(2, json.get("global_step"));
    assertEquals(0.5, json.get("epoch"));
    assertEquals(8, json.get("train_batch_size"));
    assertEquals(3, json.get("num_train_epochs"));
    assertEquals(0.65, json.get("best_metric"));
    assertEquals(2, json.get("best_global_step"));
    assertEquals("runs/dpo/checkpoint-2", json.get("best_model_checkpoint"));
    assertEquals(Map.of("TrainerControl", Map.of("args", Map.of("should_epoch_stop", false, "should_evaluate", false,
        "should_log", false, "should_save", true, "should_training_stop", false), "attributes", Map.of())),
        json.get("stateful_callbacks"));
    assertTrue(Json.MAPPER.writeValueAsString(s).contains("\"trial_params\" : null"), "nulls are written, as asdict");
  }

  @Test
  void theBestMetricFollowsMetricForBestModelAndGreaterIsBetter() {
    TrainerStateLog byLoss = new TrainerStateLog(args("eval_loss", null)); // ends in loss: smaller is better
    TrainerStateLog byAccuracy = new TrainerStateLog(args("rewards/accuracies", null)); // else greater
    TrainerStateLog inverted = new TrainerStateLog(args("loss", true));
    double[][] evals = {{0.60, 0.50}, {0.55, 0.75}, {0.58, 0.75}, {0.40, 0.625}};
    for (int i = 0; i < evals.length; i++) {
      for (TrainerStateLog log : List.of(byLoss, byAccuracy, inverted)) {
        log.evaluate(i + 1, eval(evals[i][0], evals[i][1]));
      }
    }
    assertEquals(4L, byLoss.bestStep());
    assertEquals(0.40, byLoss.state(4, s -> true).bestMetric());
    assertEquals(2L, byAccuracy.bestStep(), "a tie is not an improvement, as np.greater decides");
    assertEquals(0.75, byAccuracy.state(4, s -> true).bestMetric());
    assertEquals(1L, inverted.bestStep());
    TrainerStateLog none = new TrainerStateLog(args(null, null));
    none.evaluate(1, eval(0.6, 0.5));
    HfTrainerState s = none.state(1, step -> true);
    assertNull(s.bestMetric());
    assertNull(s.bestModelCheckpoint());
  }

  @Test
  void theBestCheckpointIsNamedOnlyOnceItsFolderExists() {
    TrainerStateLog log = new TrainerStateLog(args("loss", null));
    log.evaluate(1, eval(0.5, 0.5)); // evaluated at step 1, saved at step 2 only
    assertNull(log.state(2, step -> step == 2).bestModelCheckpoint());
    log.evaluate(2, eval(0.4, 0.5));
    assertEquals("runs/dpo/checkpoint-2", log.state(2, step -> step == 2).bestModelCheckpoint());
    log.evaluate(3, eval(0.3, 0.5));
    HfTrainerState s = log.state(4, step -> step == 2 || step == 4);
    assertEquals(3L, s.bestGlobalStep());
    assertEquals("runs/dpo/checkpoint-2", s.bestModelCheckpoint(), "kept until the best step has a folder");
    assertTrue(s.statefulCallbacks().toString().contains("should_training_stop=true"), "step 4 is max_steps");
  }

  @Test
  void aMetricTheEvaluationDoesNotReportIsRefusedBeforeTraining() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> args("rewards/acc", null).requireBestMetricAmong(Set.of("loss", "rewards/accuracies"), "train"));
    assertEquals("train.metric_for_best_model is 'rewards/acc', but evaluation reports [loss, rewards/accuracies] "
        + "(looked up with the eval_ prefix, as transformers does): pick one of those, or null to track no best "
        + "checkpoint", e.getMessage());
    args("eval_rewards/accuracies", null).requireBestMetricAmong(Set.of("loss", "rewards/accuracies"), "train");
    args(null, null).requireBestMetricAmong(Set.of(), "sft");
  }

  /** A resume takes the history back from trainer_state.json, or from metrics.jsonl for a checkpoint without one. */
  @Test
  void resumesFromTheCheckpointsTrainerStateOrRebuildsItFromTheMetricsLog() throws Exception {
    TrainerStateLog before = new TrainerStateLog(args("loss", null));
    MetricsLog metrics = MetricsLog.open(Storage.local(), dir.toString());
    for (int s = 1; s <= 4; s++) {
      Map<String, Double> m = train(0.7 - 0.05 * s, 0.25 * s);
      before.step(s, m, true);
      Map<String, Object> record = new LinkedHashMap<>();
      record.put(MetricNames.STEP, (long) s);
      record.putAll(m);
      metrics.log(record);
      if (s % 2 == 0) {
        Map<String, Double> e = eval(0.8 - 0.1 * s, 0.5);
        before.evaluate(s, e);
        Map<String, Object> er = new LinkedHashMap<>(e);
        er.put(MetricNames.STEP, (long) s);
        metrics.log(er);
      }
    }
    metrics.close();
    CheckpointStore store = new CheckpointStore(Storage.local(), dir.toString(), null);
    // Step 2's own trainer_state.json: the log as it stood then.
    TrainerStateLog upToTwo = new TrainerStateLog(args("loss", null));
    upToTwo.step(1, train(0.65, 0.25), true);
    upToTwo.step(2, train(0.6, 0.5), true);
    upToTwo.evaluate(2, eval(0.6, 0.5));
    store.save(2, Map.of(TrainerCheckpoint.STATE, PayloadWriter.json(Map.of()),
        TrainerCheckpoint.TRAINER_STATE, PayloadWriter.json(upToTwo.state(2, s -> true))));
    TrainerStateLog fromFile = TrainerStateLog.resume(args("loss", null), store.open(2), Storage.local(),
        dir.toString());
    assertEquals(Json.MAPPER.writeValueAsString(upToTwo.state(2, s -> true)),
        Json.MAPPER.writeValueAsString(fromFile.state(2, s -> true)));

    // The earlier layout has no transformers file: the metrics log up to the checkpoint's step stands in.
    store.save(3, Map.of("trainer_state.json", PayloadWriter.json(Map.of("step", 3))));
    TrainerStateLog rebuilt = TrainerStateLog.resume(args("loss", null), store.open(3), Storage.local(),
        dir.toString());
    HfTrainerState r = rebuilt.state(3, s -> true);
    assertEquals(Json.MAPPER.writeValueAsString(before.state(3, s -> true).logHistory().subList(0, 4)),
        Json.MAPPER.writeValueAsString(r.logHistory()));
    assertEquals(2L, r.bestGlobalStep());
    assertEquals(0.75, r.epoch());
  }

  /**
   * tools/hf/fixtures/trainer_state.json (what tools/hf/check_trainer_state.py is shown on in docs/training.md) was
   * written by this code: it holds exactly the dataclass's fields and reads back and writes out unchanged.
   */
  @Test
  void theCommittedFixtureIsWhatTheWriterWrites() throws Exception {
    Path fixture = Path.of(System.getProperty("project.basedir", "."), "tools/hf/fixtures/trainer_state.json");
    com.fasterxml.jackson.databind.JsonNode tree = Json.MAPPER.readTree(fixture.toFile());
    TreeSet<String> keys = new TreeSet<>();
    tree.fieldNames().forEachRemaining(keys::add);
    assertEquals(TRAINER_STATE_FIELDS, keys);
    HfTrainerState state = Json.MAPPER.treeToValue(tree, HfTrainerState.class);
    assertEquals(tree, Json.MAPPER.readTree(Json.MAPPER.writeValueAsBytes(state)));
    assertEquals(4, state.globalStep());
    assertEquals(6, state.logHistory().size());
    assertEquals(java.nio.file.Files.readString(fixture), Json.MAPPER.writeValueAsString(state),
        "byte for byte: the writer has not changed since the fixture was made");
  }
}
