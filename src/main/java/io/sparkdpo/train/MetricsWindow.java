package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The logging window: what a run logs every {@code logging_steps} from the metrics of each optimizer step, as the
 * Hugging Face Trainer and TRL 0.22.2 do. Three kinds of key:
 * <ul>
 *   <li><b>window means</b> (every key not listed below: {@code loss}, {@code rewards/*}, {@code logps/*},
 *   {@code logits/*}, {@code nll_loss}, {@code mean_token_accuracy}, {@code tokens_per_second}, {@code perf/*},
 *   {@code amp/skipped_step}): the mean over the steps since the last log, each step weighing the same. The Trainer
 *   divides its summed step losses by the steps since the last log; TRL averages the metrics it stored since then.
 *   A key a step did not report is averaged over the steps that did;</li>
 *   <li><b>point values</b> ({@link #POINT}: {@code learning_rate}, {@code epoch}, {@code grad_norm},
 *   {@code amp/loss_scale}, PPO's {@code lr} and {@code episode}): the logged step's own value, as the Trainer logs the current rate and epoch and the
 *   last step's gradient norm;</li>
 *   <li><b>running totals</b> ({@link #TOTALS}: {@code num_tokens}): a step reports its own count, the log the sum
 *   since step 1, as TRL's {@code num_tokens}.</li>
 * </ul>
 * The window is run state: a checkpoint inside a window carries it ({@link #FILE}), so a resumed run logs the
 * same numbers as an uninterrupted one. Sums are float64 in step order, so the same steps give the same bits.
 */
public final class MetricsWindow {
  /** The checkpoint file holding {@link #state()}. */
  public static final String FILE = "metrics_window.json";
  /** Keys logged as the value at the logged step. */
  public static final Set<String> POINT = Set.of(MetricNames.LEARNING_RATE, MetricNames.EPOCH,
      MetricNames.GRAD_NORM, TrainingSession.LOSS_SCALE, PpoTrainer.LR, PpoTrainer.EPISODE);
  /** Keys logged as the running sum over every step of the run. */
  public static final Set<String> TOTALS = Set.of(MetricNames.NUM_TOKENS);

  /**
   * The window after step {@code lastStep}: per key the sum over the window's steps and how many steps reported it,
   * and the running totals since step 1.
   */
  public record State(@JsonProperty("last_step") long lastStep, @JsonProperty("sums") Map<String, Double> sums,
                      @JsonProperty("counts") Map<String, Long> counts,
                      @JsonProperty("totals") Map<String, Double> totals) {
    public State {
      sums = new TreeMap<>(sums == null ? Map.of() : sums);
      counts = new TreeMap<>(counts == null ? Map.of() : counts);
      totals = new TreeMap<>(totals == null ? Map.of() : totals);
    }
  }

  private long lastStep;
  private final TreeMap<String, Double> sums = new TreeMap<>();
  private final TreeMap<String, Long> counts = new TreeMap<>();
  private final TreeMap<String, Double> totals = new TreeMap<>();
  private final TreeMap<String, Double> points = new TreeMap<>();

  /** An empty window after step {@code lastStep} (0 for a fresh run), with no totals yet. */
  public MetricsWindow(long lastStep) {
    this.lastStep = lastStep;
  }

  /** The window a checkpoint carried. */
  public static MetricsWindow restore(State state) {
    MetricsWindow w = new MetricsWindow(state.lastStep());
    w.sums.putAll(state.sums());
    w.counts.putAll(state.counts());
    w.totals.putAll(state.totals());
    return w;
  }

  /** Takes in step {@code step}'s metrics (the mean over ranks); steps come in order, one each. */
  public void add(long step, Map<String, Double> metrics) {
    if (step != lastStep + 1) {
      throw new IllegalStateException("metrics of step " + step + " after step " + lastStep);
    }
    lastStep = step;
    points.clear();
    metrics.forEach((k, v) -> {
      if (POINT.contains(k)) {
        points.put(k, v);
      } else if (TOTALS.contains(k)) {
        totals.merge(k, v, Double::sum);
      } else {
        sums.merge(k, v, Double::sum);
        counts.merge(k, 1L, Long::sum);
      }
    });
  }

  /**
   * What the log records after the last step added: window means, that step's point values and the running totals
   * (sorted by key); the window then starts again (totals go on).
   */
  public Map<String, Double> take() {
    Map<String, Double> out = new TreeMap<>(points);
    sums.forEach((k, v) -> out.put(k, v / counts.get(k)));
    out.putAll(totals);
    sums.clear();
    counts.clear();
    return out;
  }

  public long lastStep() {
    return lastStep;
  }

  /**
   * What a checkpoint after {@link #lastStep()} keeps. Point values are not kept: a log is always at a step the
   * resumed run takes itself.
   */
  public State state() {
    return new State(lastStep, sums, counts, totals);
  }
}
