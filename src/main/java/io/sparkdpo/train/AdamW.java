package io.sparkdpo.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.sparkdpo.config.OptimizationSettings;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * Adam with decoupled weight decay, step for step the arithmetic of {@code torch.optim.AdamW} (single-tensor
 * path, amsgrad off): {@code p *= 1 - lr wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)}.
 *
 * <p>The moments live on the parameters' device in this optimizer's own {@link NDManager} (one optimizer per
 * run; DJL never frees optimizer state by itself) and are updated in place; the few temporaries of a step are
 * closed before it returns. {@link #exportState()} / {@link #restoreState} move them to and from a state file for
 * checkpoints, bit for bit, a chunk at a time.
 */
public final class AdamW implements AutoCloseable {
  /** Hyper-parameters other than the learning rate, which the schedule supplies per step. */
  public record Hyper(double beta1, double beta2, double eps, double weightDecay) {
    public static Hyper of(OptimizationSettings s) {
      return new Hyper(s.adamBeta1(), s.adamBeta2(), s.adamEpsilon(), s.weightDecay());
    }
  }

  // Hugging Face's Trainer exempts biases and normalisation weights from weight decay; Llama names its norms
  // input_layernorm, post_attention_layernorm and norm.
  private static final Pattern NO_DECAY = Pattern.compile(
      "(?i).*(bias|layernorm|rmsnorm|(^|\\.)norm(\\.|$)|_norm(\\.|$)).*");

  private final Hyper hyper;
  private final List<String> names;
  private final List<NDArray> params;
  private final boolean[] decays;
  private final NDManager manager;
  private final List<NDArray> expAvg = new ArrayList<>();
  private final List<NDArray> expAvgSq = new ArrayList<>();
  private long step;

  /**
   * @param params parameters by name, in a fixed order (the model's)
   * @param decays which parameters get weight decay, by name; {@link #decaysByDefault} is Hugging Face's rule
   */
  public AdamW(LinkedHashMap<String, NDArray> params, Hyper hyper, Predicate<String> decays) {
    if (params.isEmpty()) {
      throw new IllegalArgumentException("no parameters to optimise");
    }
    this.hyper = hyper;
    this.names = List.copyOf(params.keySet());
    this.params = List.copyOf(params.values());
    this.decays = new boolean[names.size()];
    Device device = this.params.get(0).getDevice();
    this.manager = this.params.get(0).getManager().getEngine().newBaseManager(device);
    this.manager.setName("adamw");
    for (int i = 0; i < names.size(); i++) {
      NDArray p = this.params.get(i);
      this.decays[i] = decays.test(names.get(i));
      expAvg.add(manager.zeros(p.getShape(), p.getDataType()));
      expAvgSq.add(manager.zeros(p.getShape(), p.getDataType()));
    }
  }

  /** Hugging Face's choice: decay everything but biases and normalisation weights. */
  public static Predicate<String> decaysByDefault() {
    return name -> !NO_DECAY.matcher(name).matches();
  }

  /** Updates completed so far (torch's {@code state['step']}). */
  public long stepCount() {
    return step;
  }

  public List<String> names() {
    return names;
  }

  /**
   * One update of every parameter, in place. {@code grads} are in the order of the constructor's map, on the
   * parameters' device; they are read, not changed.
   */
  public void step(List<NDArray> grads, double lr) {
    if (grads.size() != params.size()) {
      throw new IllegalArgumentException("expected " + params.size() + " gradients, got " + grads.size());
    }
    step++;
    double biasCorrection1 = 1 - Math.pow(hyper.beta1(), step);
    double biasCorrection2 = 1 - Math.pow(hyper.beta2(), step);
    double stepSize = lr / biasCorrection1;
    double biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
    try (GradMode ignored = GradMode.off()) {
      for (int i = 0; i < params.size(); i++) {
        NDArray p = params.get(i);
        NDArray g = grads.get(i);
        NDArray m = expAvg.get(i);
        NDArray v = expAvgSq.get(i);
        if (decays[i] && hyper.weightDecay() != 0) {
          p.muli(1 - lr * hyper.weightDecay());
        }
        try (NDArray scaled = g.mul(1 - hyper.beta1())) {
          m.muli(hyper.beta1()).addi(scaled);
        }
        try (NDArray squared = g.mul(1 - hyper.beta2()).muli(g)) {
          v.muli(hyper.beta2()).addi(squared);
        }
        // addcdiv_(m, denom, value=-step_size) evaluates (value * m) / denom.
        try (NDArray denom = v.sqrt().divi(biasCorrection2Sqrt).addi(hyper.eps());
             NDArray update = m.mul(-stepSize).divi(denom)) {
          p.addi(update);
        }
      }
    }
  }

  /**
   * Step count and both moments of every parameter ({@code name.exp_avg}, {@code name.exp_avg_sq}). The tensors
   * refer to this optimizer's live arrays: write the state before the next step.
   */
  public OptimizerState exportState() {
    LinkedHashMap<String, OptimizerState.Tensor> tensors = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      tensors.put(names.get(i) + ".exp_avg", OptimizerState.Tensor.of(expAvg.get(i)));
      tensors.put(names.get(i) + ".exp_avg_sq", OptimizerState.Tensor.of(expAvgSq.get(i)));
    }
    return new OptimizerState(step, tensors);
  }

  /** Replaces the moments and step count with a checkpoint's; names and shapes must match this optimizer's. */
  public void importState(OptimizerState state) {
    Map<String, long[]> shapes = new LinkedHashMap<>();
    state.tensors().forEach((name, t) -> shapes.put(name, t.shape()));
    requireFits(shapes);
    for (int i = 0; i < names.size(); i++) {
      replace(expAvg, i, state.tensors().get(names.get(i) + ".exp_avg"));
      replace(expAvgSq, i, state.tensors().get(names.get(i) + ".exp_avg_sq"));
    }
    step = state.step();
  }

  /**
   * {@link #importState} from a state file as {@link OptimizerState#write} wrote it, streamed into device arrays
   * a chunk at a time: the moments of a large model never pass through the Java heap. Checked against this
   * optimizer's names and shapes before any moment is replaced.
   */
  public void restoreState(InputStream in, String source) throws IOException {
    OptimizerState.Layout layout = OptimizerState.readLayout(in, source);
    Map<String, long[]> shapes = new LinkedHashMap<>();
    layout.entries().forEach(e -> shapes.put(e.name(), e.shape()));
    try {
      requireFits(shapes);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
    }
    Map<String, Integer> index = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      index.put(names.get(i) + ".exp_avg", i);
      index.put(names.get(i) + ".exp_avg_sq", -1 - i);
    }
    for (OptimizerState.Entry e : layout.entries()) {
      int at = index.get(e.name());
      List<NDArray> moments = at >= 0 ? expAvg : expAvgSq;
      int i = at >= 0 ? at : -1 - at;
      NDArray old = moments.get(i);
      NDArray fresh = manager.zeros(old.getShape(), old.getDataType());
      try {
        OptimizerState.readInto(in, e, fresh);
      } catch (IOException | RuntimeException failure) {
        fresh.close();
        throw failure;
      }
      old.close();
      moments.set(i, fresh);
    }
    step = layout.step();
  }

  private void requireFits(Map<String, long[]> shapes) {
    List<String> problems = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) {
      for (String suffix : List.of(".exp_avg", ".exp_avg_sq")) {
        long[] shape = shapes.get(names.get(i) + suffix);
        if (shape == null) {
          problems.add("missing " + names.get(i) + suffix);
        } else if (!new Shape(shape).equals(params.get(i).getShape())) {
          problems.add(names.get(i) + suffix + " has shape " + new Shape(shape) + ", the parameter "
              + params.get(i).getShape());
        }
      }
    }
    if (shapes.size() != 2 * names.size()) {
      problems.add("the state holds " + shapes.size() + " arrays, this optimizer " + 2 * names.size());
    }
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException("optimizer state does not fit the model: " + String.join("; ", problems));
    }
  }

  private void replace(List<NDArray> moments, int i, OptimizerState.Tensor t) {
    NDArray fresh = manager.create(t.data(), new Shape(t.shape()));
    DataType type = moments.get(i).getDataType();
    if (type != DataType.FLOAT32) {
      NDArray cast = fresh.toType(type, false);
      fresh.close();
      fresh = cast;
    }
    moments.get(i).close();
    moments.set(i, fresh);
  }

  /** Arrays this optimizer holds on the device (two per parameter); for leak checks. */
  public int liveArrays() {
    return manager.getManagedArrays().size();
  }

  @Override
  public void close() {
    manager.close();
  }
}
