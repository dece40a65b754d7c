package io.sparkdpo.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import io.sparkdpo.io.Storage;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * PPO's value head: a scalar V(s) from the causal LM's final hidden state at a position, the state before the
 * token that position predicts. One float32 linear layer {@code hidden_size -> 1} with a bias, named as TRL's
 * {@code AutoModelForCausalLMWithValueHead} ({@code v_head.summary}), on the policy's own hidden states, which it
 * reads <em>detached</em>: the value loss trains the head, never the policy. With a shared trunk the value loss
 * moves the policy too, spending KL budget on nothing the reward asked for (a tiny PPO run drifted from pi_SFT
 * with no reward gain until it was detached); TRL 0.22.2's PPOTrainer keeps policy and value apart likewise, with a
 * separate value model.
 *
 * <p>Init is torch's {@code nn.Linear} default (TRL's "random" strategy): weight and bias uniform in
 * {@code (-1/sqrt(d), 1/sqrt(d))}, drawn from a {@link SplittableRandom} of the seed, so the same seed gives the
 * same head on any machine. The parameters live in the head's own manager; the model knows nothing of it.
 */
public final class ValueHead implements AutoCloseable {
  public static final String WEIGHT = "v_head.summary.weight";
  public static final String BIAS = "v_head.summary.bias";

  private final NDManager manager;
  private final LinkedHashMap<String, Parameter> parameters = new LinkedHashMap<>();
  private final int hiddenSize;

  private ValueHead(int hiddenSize, Device device, float[] weight, float bias) {
    this.hiddenSize = hiddenSize;
    this.manager = NDManager.newBaseManager(device, "PyTorch");
    try {
      add(WEIGHT, weight, new Shape(1, hiddenSize), Parameter.Type.WEIGHT);
      add(BIAS, new float[] {bias}, new Shape(1), Parameter.Type.BIAS);
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /** A fresh head for {@code model}'s hidden size on its device. */
  public static ValueHead create(CausalLM model, long seed) {
    return create(model.config().hiddenSize(), model.device(), seed);
  }

  public static ValueHead create(int hiddenSize, Device device, long seed) {
    if (hiddenSize < 1) {
      throw new IllegalArgumentException("hidden_size must be >= 1, got " + hiddenSize);
    }
    SplittableRandom random = new SplittableRandom(seed ^ 0x76686561645fL); // "vhead_": apart from other draws
    double bound = 1.0 / Math.sqrt(hiddenSize);
    float[] w = new float[hiddenSize];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) ((random.nextDouble() * 2 - 1) * bound);
    }
    return new ValueHead(hiddenSize, device, w, (float) ((random.nextDouble() * 2 - 1) * bound));
  }

  /** Writes the head as a float32 safetensors file of its two tensors (a checkpoint's, bit for bit). */
  public void save(String file, Storage storage) {
    List<Safetensors.Tensor> tensors = new ArrayList<>();
    for (Parameter p : parameters.values()) {
      float[] values = p.getArray().toFloatArray();
      ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
      buffer.asFloatBuffer().put(values);
      tensors.add(Safetensors.Tensor.of(p.getName(), p.getArray().getShape().getShape(), buffer));
    }
    try (OutputStream out = new BufferedOutputStream(storage.create(file), 1 << 16)) {
      Safetensors.write(out, tensors, Safetensors.Dtype.F32);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * Reads a head {@link #save} wrote (any float dtype) for a model of {@code hiddenSize}; a missing, extra or
   * misshapen tensor fails naming the file and the tensor.
   */
  public static ValueHead load(String file, Storage storage, Device device, int hiddenSize) {
    Map<String, float[]> read = new LinkedHashMap<>();
    Safetensors.read(storage, file, (entry, float32) -> {
      long[] expected = WEIGHT.equals(entry.name()) ? new long[] {1, hiddenSize}
          : BIAS.equals(entry.name()) ? new long[] {1} : null;
      if (expected == null) {
        throw new IllegalArgumentException(file + ": unexpected tensor " + entry.name() + " (a value head has "
            + WEIGHT + " and " + BIAS + ")");
      }
      if (!Arrays.equals(expected, entry.shape())) {
        throw new IllegalArgumentException(file + ": tensor " + entry.name() + " has shape "
            + Arrays.toString(entry.shape()) + ", expected " + Arrays.toString(expected) + " for hidden_size "
            + hiddenSize);
      }
      float[] values = new float[Math.toIntExact(entry.numel())];
      float32.asFloatBuffer().get(values);
      read.put(entry.name(), values);
    });
    for (String name : List.of(WEIGHT, BIAS)) {
      if (!read.containsKey(name)) {
        throw new IllegalArgumentException(file + ": missing tensor " + name);
      }
    }
    return new ValueHead(hiddenSize, device, read.get(WEIGHT), read.get(BIAS)[0]);
  }

  private void add(String name, float[] values, Shape shape, Parameter.Type type) {
    Parameter p = Parameter.builder().setName(name).setType(type).build();
    // Owned by libtorch: backward reads the weight after the forward scope's Java buffers are gone.
    NDArray array = CausalLM.owned(manager.create(values, shape));
    array.attach(manager);
    array.setName(name);
    array.setRequiresGradient(true);
    p.setArray(array);
    parameters.put(name, p);
  }

  public int hiddenSize() {
    return hiddenSize;
  }

  /** The trainable parameters under TRL's state-dict names, weight then bias. */
  public LinkedHashMap<String, Parameter> parameters() {
    return parameters;
  }

  /**
   * V for hidden rows [R, hidden_size] (any float dtype; cast to float32 as autograd records it): float32 [R],
   * attached to {@code hidden}'s manager. Recorded whenever the thread's grad mode is on.
   */
  public NDArray values(NDArray hidden) {
    if (hidden.getShape().dimension() != 2 || hidden.getShape().get(1) != hiddenSize) {
      throw new IllegalArgumentException("value head of hidden size " + hiddenSize + " got rows " + hidden.getShape());
    }
    // Detached: the value loss trains the head only (see the class comment).
    NDArray detached = hidden.stopGradient();
    NDArray x = Casts.of(detached) == DataType.FLOAT32 ? detached : Casts.to(detached, DataType.FLOAT32);
    NDArray weight = parameters.get(WEIGHT).getArray();
    NDArray bias = parameters.get(BIAS).getArray();
    NDArray out = x.getNDArrayInternal().linear(x, weight, bias).singletonOrThrow();
    NDArray flat = out.reshape(-1);
    out.close();
    if (x != detached) {
      x.close();
    }
    detached.close();
    return flat;
  }

  @Override
  public void close() {
    manager.close();
  }
}
