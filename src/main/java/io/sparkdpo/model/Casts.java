package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
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
 */
final class Casts {
  /** libtorch's ScalarType numbers. */
  private static final long TORCH_HALF = 5;
  private static final long TORCH_FLOAT = 6;
  private static final long TORCH_BFLOAT16 = 15;
  private static volatile PtSymbolBlock to;
  private static volatile PtSymbolBlock empty;
  private static volatile PtSymbolBlock typeAs;

  private Casts() {}

  /** The dtype of {@code x}, reading DJL's UNKNOWN as bfloat16 (the only dtype this project makes that DJL cannot name). */
  static DataType of(NDArray x) {
    DataType t = x.getDataType();
    return t == DataType.UNKNOWN ? DataType.BFLOAT16 : t;
  }

  /** {@code x} as {@code dtype}, a new array attached to x's manager (also when x already has that dtype). */
  static NDArray to(NDArray x, DataType dtype) {
    if (dtype != DataType.BFLOAT16) {
      return x.toType(dtype, true);
    }
    load();
    JniUtils.setGraphExecutorOptimize(false);
    try (IValue in = IValue.from((PtNDArray) x); IValue code = IValue.from(torchCode(dtype));
        IValue out = IValueUtils.forward(to, new IValue[] {in, code})) {
      return out.toTensor((PtNDManager) x.getManager());
    }
  }

  /** {@code x} cast to the dtype of {@code like} (torch's {@code type_as}), attached to x's manager. */
  static NDArray typeAs(NDArray x, NDArray like) {
    load();
    JniUtils.setGraphExecutorOptimize(false);
    try (IValue a = IValue.from((PtNDArray) x); IValue b = IValue.from((PtNDArray) like);
        IValue out = IValueUtils.forward(typeAs, new IValue[] {a, b})) {
      return out.toTensor((PtNDManager) x.getManager());
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
        to = module(manager, "CastTo", "x: Tensor,\n    dtype: int", "torch.to(x, dtype)");
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
