package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValueUtils;
import ai.djl.pytorch.jni.JniUtils;
import java.io.ByteArrayInputStream;
import java.io.IOException;

/**
 * Creating and casting tensors of the model's dtype. DJL 0.36's native layer has no code for bfloat16: creating
 * an array of it or casting to it ({@code create(Shape, BFLOAT16)}, {@code toType(BFLOAT16)}, {@code zeros},
 * {@code full}, {@code softmax} of a bf16 array) aborts the whole JVM ("terminate called without an active
 * exception"), and a bf16 array's {@code getDataType()} reads {@code UNKNOWN}. Every other op works on bf16 arrays,
 * since they pass handles, not dtype codes. So bf16 arrays are made and cast here, by one-line TorchScript
 * modules that take libtorch's own dtype numbers; float32 and float16 go through DJL. These modules are needed
 * whatever {@code sparkdpo.fused} says: without TorchScript a bf16 model cannot exist.
 *
 * <p>The modules run through {@code IValueUtils.forward(block, NDList, true)}, in the thread's ordinary grad mode:
 * DJL's other entry point runs them in libtorch's inference mode, whose outputs are inference tensors that
 * autograd refuses to save for backward, so a frozen bf16 base could not pass gradients on to adapters (and a cast
 * of an activation would cut the graph). Hence only tensors go in; the dtype is part of each module's code.
 */
final class Casts {
  /** libtorch's ScalarType numbers. */
  private static final int TORCH_HALF = 5;
  private static final int TORCH_FLOAT = 6;
  private static final int TORCH_BFLOAT16 = 15;
  private static volatile PtSymbolBlock toBf16;
  private static volatile PtSymbolBlock toFloat32;
  private static volatile PtSymbolBlock toFloat16;
  private static volatile PtSymbolBlock empty;
  private static volatile PtSymbolBlock typeAs;

  private Casts() {}

  /** The dtype of {@code x}, reading DJL's UNKNOWN as bfloat16 (the only dtype this project makes that DJL cannot name). */
  static DataType of(NDArray x) {
    DataType t = x.getDataType();
    return t == DataType.UNKNOWN ? DataType.BFLOAT16 : t;
  }

  /**
   * {@code x} as {@code dtype} (FLOAT32, FLOAT16 or BFLOAT16), a new array attached to x's manager (also when x
   * already has that dtype). Unlike DJL's {@code toType}, which autograd does not see (its result has no
   * gradient function, so a backward pass stops there), this cast is recorded: use it on activations.
   */
  static NDArray to(NDArray x, DataType dtype) {
    load();
    PtSymbolBlock cast = switch (dtype) {
      case FLOAT32 -> toFloat32;
      case FLOAT16 -> toFloat16;
      case BFLOAT16 -> toBf16;
      default -> throw new IllegalArgumentException("no cast to " + dtype);
    };
    return run(cast, new NDList(x));
  }

  /** {@code x} cast to the dtype of {@code like} (torch's {@code type_as}), attached to x's manager. */
  static NDArray typeAs(NDArray x, NDArray like) {
    load();
    return run(typeAs, new NDList(x, like));
  }

  /** An uninitialised array (torch.empty) of {@code shape} and {@code dtype} on the manager's device. */
  static NDArray empty(NDManager manager, Shape shape, DataType dtype) {
    if (dtype != DataType.BFLOAT16) {
      return manager.create(shape, dtype);
    }
    if (!ai.djl.Device.cpu().equals(manager.getDevice())) {
      try (NDManager cpu = NDManager.newBaseManager(ai.djl.Device.cpu(), "PyTorch")) {
        NDArray host = empty(cpu, shape, dtype);
        NDArray moved = host.toDevice(manager.getDevice(), true);
        moved.attach(manager);
        return moved;
      }
    }
    load();
    // The shape travels as a float32 scalar broadcast to it: a view with no memory of its own.
    try (NDManager scope = manager.newSubManager(); NDArray scalar = scope.create(0f);
        NDArray template = scalar.broadcast(shape)) {
      NDArray out = run(empty, new NDList(template));
      out.attach(manager);
      return out;
    }
  }

  /** Runs a one-op module outside inference mode (see the class comment); the result is attached to the first input's manager. */
  private static NDArray run(PtSymbolBlock module, NDList inputs) {
    JniUtils.setGraphExecutorOptimize(false);
    return IValueUtils.forward(module, inputs, true).singletonOrThrow();
  }

  private static void load() {
    if (typeAs != null) {
      return;
    }
    synchronized (Casts.class) {
      if (typeAs != null) {
        return;
      }
      try {
        PtNDManager manager = (PtNDManager) NDManager.newBaseManager("PyTorch");
        toBf16 = module(manager, "ToBfloat16", "x: Tensor", "torch.to(x, " + TORCH_BFLOAT16 + ")");
        toFloat32 = module(manager, "ToFloat32", "x: Tensor", "torch.to(x, " + TORCH_FLOAT + ")");
        toFloat16 = module(manager, "ToFloat16", "x: Tensor", "torch.to(x, " + TORCH_HALF + ")");
        empty = module(manager, "EmptyBfloat16", "like: Tensor",
            "torch.empty(torch.size(like), dtype=" + TORCH_BFLOAT16 + ")");
        typeAs = module(manager, "TypeAs", "x: Tensor,\n    like: Tensor", "torch.type_as(x, like)");
      } catch (IOException | RuntimeException e) {
        throw new IllegalStateException("bfloat16 weights need libtorch's TorchScript, which is not reachable here "
            + "(DJL 0.36 has no bfloat16 of its own); use model.dtype float32 or float16: " + e, e);
      }
    }
  }

  private static PtSymbolBlock module(PtNDManager manager, String name, String args, String body) throws IOException {
    String code = String.join("\n",
        "class " + name + "(Module):",
        "  __parameters__ = []",
        "  __buffers__ = []",
        "  training : bool",
        "  def forward(self: __torch__." + name + ",",
        "    " + args + ") -> Tensor:",
        "    return " + body,
        "");
    return JniUtils.loadModule(manager, new ByteArrayInputStream(FusedOps.archive(name, code)), false, false);
  }
}
