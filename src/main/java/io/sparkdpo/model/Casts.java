package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
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
 * <p>{@link #to} and {@link #typeAs} run as recorded ops (the {@code NDList} path of DJL's module runner, as
 * {@link FusedOps} does): with grad mode on their outputs are part of the autograd graph, so mixed precision can cast
 * float32 master weights to bfloat16 for a matmul and receive float32 gradients. DJL's own {@code toType} is no
 * such op, in any direction (backward through it finds no graph), and the {@code IValue} path of the module runner
 * runs in inference mode, whose outputs neither record a graph nor may be saved for backward.
 */
final class Casts {
  /** libtorch's ScalarType numbers. */
  private static final long TORCH_HALF = 5;
  private static final long TORCH_FLOAT = 6;
  private static final long TORCH_BFLOAT16 = 15;
  private static volatile PtSymbolBlock toFloat32;
  private static volatile PtSymbolBlock toFloat16;
  private static volatile PtSymbolBlock toBfloat16;
  private static volatile PtSymbolBlock empty;
  private static volatile PtSymbolBlock typeAs;

  private Casts() {}

  /** The dtype of {@code x}, reading DJL's UNKNOWN as bfloat16 (the only dtype this project makes that DJL cannot name). */
  static DataType of(NDArray x) {
    DataType t = x.getDataType();
    return t == DataType.UNKNOWN ? DataType.BFLOAT16 : t;
  }

  /**
   * {@code x} as {@code dtype}, a new array attached to x's manager (also when x already has that dtype); recorded
   * for autograd when grad mode is on.
   */
  static NDArray to(NDArray x, DataType dtype) {
    load();
    PtSymbolBlock cast = switch (dtype) {
      case FLOAT32 -> toFloat32;
      case FLOAT16 -> toFloat16;
      case BFLOAT16 -> toBfloat16;
      default -> throw new IllegalArgumentException("no cast to " + dtype);
    };
    return recorded(cast, x);
  }

  /** {@code x} cast to the dtype of {@code like} (torch's {@code type_as}), attached to x's manager; recorded. */
  static NDArray typeAs(NDArray x, NDArray like) {
    load();
    return recorded(typeAs, x, like);
  }

  /**
   * Runs a cast module as an eager op (see FusedOps.run); the result is attached to the first input's manager. A
   * named input (a parameter's name has dots) goes in as an unnamed view: DJL passes named arrays to a module as a
   * dictionary, which a module taking a tensor refuses. The views' wrappers are closed after the call; autograd
   * keeps what it needs of them.
   */
  private static NDArray recorded(PtSymbolBlock module, NDArray... inputs) {
    NDList list = new NDList(inputs.length);
    NDList views = new NDList();
    try {
      for (NDArray x : inputs) {
        if (x.getName() == null) {
          list.add(x);
        } else {
          NDArray view = x.reshape(x.getShape());
          views.add(view);
          list.add(view);
        }
      }
      JniUtils.setGraphExecutorOptimize(false);
      return IValueUtils.forward(module, list, true).singletonOrThrow();
    } finally {
      views.close();
    }
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
    JniUtils.setGraphExecutorOptimize(false);
    try (IValue size = IValue.listFrom(shape.getShape()); IValue code = IValue.from(torchCode(dtype));
        IValue out = IValueUtils.forward(empty, new IValue[] {size, code})) {
      return out.toTensor((PtNDManager) manager);
    }
  }

  private static long torchCode(DataType dtype) {
    return switch (dtype) {
      case FLOAT32 -> TORCH_FLOAT;
      case FLOAT16 -> TORCH_HALF;
      case BFLOAT16 -> TORCH_BFLOAT16;
      default -> throw new IllegalArgumentException("no cast to " + dtype);
    };
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
        toFloat32 = module(manager, "ToFloat32", "x: Tensor", "torch.to(x, " + TORCH_FLOAT + ")");
        toFloat16 = module(manager, "ToFloat16", "x: Tensor", "torch.to(x, " + TORCH_HALF + ")");
        toBfloat16 = module(manager, "ToBfloat16", "x: Tensor", "torch.to(x, " + TORCH_BFLOAT16 + ")");
        empty = module(manager, "EmptyOf", "size: List[int],\n    dtype: int", "torch.empty(size, dtype=dtype)");
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
