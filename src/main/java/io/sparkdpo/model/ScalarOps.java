package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.function.BinaryOperator;

/**
 * Multiply, divide and power by a constant inside a recorded (autograd) computation. DJL's {@code mul(Number)},
 * {@code div(Number)}, {@code pow(Number)} and their in-place forms wrap the constant in a scalar array made from
 * Java data, which on the CPU aliases a Java direct buffer, and close it at once; backward of these ops reads the
 * constant again, by then from freed (and possibly reused) memory. Here the constant is a libtorch-owned scalar
 * ({@code full}), which autograd keeps alive. Addition and subtraction do not read the constant in backward.
 */
public final class ScalarOps {
  private ScalarOps() {}

  public static NDArray mul(NDArray x, double value) {
    return apply(x, value, NDArray::mul);
  }

  public static NDArray div(NDArray x, double value) {
    return apply(x, value, NDArray::div);
  }

  public static NDArray pow(NDArray x, double value) {
    return apply(x, value, NDArray::pow);
  }

  /** {@code x} times {@code value} in place; returns {@code x}. */
  public static NDArray muli(NDArray x, double value) {
    return apply(x, value, NDArray::muli);
  }

  /** {@code x} divided by {@code value} in place; returns {@code x}. */
  public static NDArray divi(NDArray x, double value) {
    return apply(x, value, NDArray::divi);
  }

  private static NDArray apply(NDArray x, double value, BinaryOperator<NDArray> op) {
    // A bf16 array's dtype reads UNKNOWN and DJL cannot make bf16 arrays (see Casts): a float32 0-dim scalar
    // leaves the result in bf16 (torch's promotion lets dimensioned operands decide within a category).
    DataType type = x.getDataType() == DataType.UNKNOWN ? DataType.FLOAT32 : x.getDataType();
    try (NDArray scalar = x.getManager().full(new Shape(), (float) value, type)) {
      return op.apply(x, scalar);
    }
  }
}
