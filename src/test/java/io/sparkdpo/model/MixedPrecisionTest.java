package io.sparkdpo.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Mixed precision ({@link CausalLM#computeDtype(DataType)}): a training pass with matmuls in bfloat16 or float16 and
 * float32 master weights gives the float32 pass's loss and gradients within the lower precision's error, the
 * gradients reach every float32 parameter in float32, and no-grad passes of the model compute the same way.
 *
 * <p>Tolerances. bfloat16 keeps 8 significant bits (a relative spacing of 2^-7 = 7.8e-3, rounding error up to half
 * that per value); float16 keeps 11 (2^-10 = 9.8e-4). Sums over hundreds of such roundings mostly cancel: measured
 * on this model (5 Dec 2026), the batch loss moved by 2e-5 to 4e-5 relative in bfloat16 and 6e-7 in float16, the
 * gradient vector, compared as a whole as ||g - g32|| / ||g32|| (single elements near 0 have no meaningful relative
 * error), by 5e-3 in bfloat16 and 6e-4 in float16. The bounds are a quarter of a spacing for the loss (2e-3, 2.5e-4)
 * and about four times the measured gradient error (2e-2, 2.5e-3): a cast lost on the way (a float32 matmul, a
 * gradient that never arrives) or a systematic bias fails them, bf16's ordinary rounding does not.
 */
class MixedPrecisionTest {
  private static final ModelConfig CONFIG = ModelConfig.llama(512, 64, 176, 2, 4, 2, false);
  private static final double LOSS_RELATIVE_BF16 = 2e-3;
  private static final double GRAD_RELATIVE_BF16 = 2e-2;
  private static final double LOSS_RELATIVE_FP16 = 2.5e-4;
  private static final double GRAD_RELATIVE_FP16 = 2.5e-3;

  /** The loss (minus the summed response log-probs of the batch) and every parameter's gradient. */
  private record Pass(double loss, double[] sums, float[][] grads) {}

  private static List<int[]> rows(int seed, int n, int length) {
    Random r = new Random(seed);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int[] row = new int[length - i];
      for (int t = 0; t < row.length; t++) {
        row[t] = r.nextInt(CONFIG.vocabSize());
      }
      out.add(row);
    }
    return out;
  }

  private static Pass trainingPass(CausalLM model) {
    List<int[]> prompts = rows(1, 3, 9);
    List<int[]> responses = rows(2, 3, 14);
    float[][] grads;
    double loss;
    double[] sums;
    try (NDManager m = NDManager.newBaseManager();
        GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector()) {
      SequenceLogProbs.Batch b = new SequenceLogProbs(model).compute(m, prompts, responses, true);
      NDArray lossArray = b.sum().sum().neg();
      loss = lossArray.getFloat();
      sums = b.sums();
      collector.backward(lossArray);
    }
    List<Parameter> params = new ArrayList<>(model.parameters().values());
    grads = new float[params.size()][];
    try (NoGrad ignored = NoGrad.enter()) {
      for (int i = 0; i < grads.length; i++) {
        NDArray p = params.get(i).getArray();
        assertEquals(DataType.FLOAT32, p.getDataType(), params.get(i).getName() + ": master weight");
        try (NDArray g = p.getGradient()) {
          assertEquals(DataType.FLOAT32, g.getDataType(), params.get(i).getName() + ": gradient");
          grads[i] = g.toFloatArray();
          g.muli(0);
        }
      }
    }
    return new Pass(loss, sums, grads);
  }

  private static double relativeGradientError(float[][] g, float[][] reference) {
    double diff = 0;
    double norm = 0;
    for (int i = 0; i < g.length; i++) {
      for (int j = 0; j < g[i].length; j++) {
        diff += Math.pow(g[i][j] - reference[i][j], 2);
        norm += Math.pow(reference[i][j], 2);
      }
    }
    return Math.sqrt(diff / norm);
  }

  private static void comparesWithFloat32(DataType compute, boolean fused, double lossBound, double gradBound) {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 11)) {
      model.useFusedOps(fused);
      Pass wide = trainingPass(model);
      model.computeDtype(compute);
      assertEquals(compute, model.computeDtype());
      assertEquals(DataType.FLOAT32, model.dtype());
      Pass narrow = trainingPass(model);
      double lossError = Math.abs(narrow.loss() - wide.loss()) / Math.abs(wide.loss());
      double gradError = relativeGradientError(narrow.grads(), wide.grads());
      System.out.printf("%s fused=%s: loss %.6f vs float32 %.6f (relative %.2e), gradient relative error %.2e%n",
          compute, fused, narrow.loss(), wide.loss(), lossError, gradError);
      assertTrue(lossError < lossBound, compute + " loss " + narrow.loss() + " vs float32 " + wide.loss());
      assertTrue(gradError < gradBound, compute + " gradient relative error " + gradError);
      // The lower precision is really used: the results are not float32's to the last bits.
      assertTrue(lossError > 1e-7, compute + " loss equals float32's: the matmuls did not run in " + compute);
      for (int i = 0; i < narrow.grads().length; i++) {
        double sq = 0;
        for (float v : narrow.grads()[i]) {
          sq += v * v;
        }
        assertTrue(sq > 0, "parameter " + i + " received no gradient");
      }
      // Switched off, the model is float32 again, bit for bit.
      model.computeDtype(DataType.FLOAT32);
      Pass again = trainingPass(model);
      assertEquals(wide.loss(), again.loss());
      for (int i = 0; i < wide.grads().length; i++) {
        assertArrayEquals(wide.grads()[i], again.grads()[i]);
      }
    }
  }

  @Test
  void bfloat16StepMatchesFloat32WithinBfloat16Error() {
    comparesWithFloat32(DataType.BFLOAT16, true, LOSS_RELATIVE_BF16, GRAD_RELATIVE_BF16);
  }

  @Test
  void bfloat16StepWithExplicitOpsMatchesFloat32() {
    comparesWithFloat32(DataType.BFLOAT16, false, LOSS_RELATIVE_BF16, GRAD_RELATIVE_BF16);
  }

  @Test
  void float16StepMatchesFloat32WithinFloat16Error() {
    comparesWithFloat32(DataType.FLOAT16, true, LOSS_RELATIVE_FP16, GRAD_RELATIVE_FP16);
  }

  @Test
  void noGradPassesComputeAsTheTrainingPassDoes() {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 11); NDManager m = NDManager.newBaseManager()) {
      List<int[]> prompts = rows(1, 3, 9);
      List<int[]> responses = rows(2, 3, 14);
      double[] wide = new SequenceLogProbs(model).compute(m, prompts, responses, false).sums();
      model.computeDtype(DataType.BFLOAT16);
      double[] evaluated = new SequenceLogProbs(model).compute(m, prompts, responses, false).sums();
      double[] trained = trainingPass(model).sums();
      assertArrayEquals(trained, evaluated, 0.0, "evaluation runs the training pass's arithmetic");
      for (int i = 0; i < wide.length; i++) {
        assertEquals(wide[i], evaluated[i], LOSS_RELATIVE_BF16 * Math.abs(wide[i]));
        assertTrue(evaluated[i] != wide[i], "sequence " + i + ": the no-grad pass ignored the compute dtype");
      }
    }
  }

  @Test
  void castWeightsLiveForThePassOnly() {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 11)) {
      model.computeDtype(DataType.BFLOAT16);
      trainingPass(model);
      int modelArrays = model.manager().getManagedArrays().size();
      for (int i = 0; i < 3; i++) {
        trainingPass(model);
        assertEquals(modelArrays, model.manager().getManagedArrays().size(), "a cast left in the model's manager");
      }
    }
  }

  @Test
  void onlyFloat32ParametersTakeALowerComputeDtype() {
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 11, DataType.BFLOAT16)) {
      model.computeDtype(DataType.BFLOAT16); // its own dtype: nothing to switch
      assertEquals(DataType.BFLOAT16, model.computeDtype());
      assertThrows(IllegalArgumentException.class, () -> model.computeDtype(DataType.FLOAT16));
      assertThrows(IllegalArgumentException.class, () -> model.computeDtype(DataType.FLOAT32));
    }
    try (CausalLM model = CausalLM.create(CONFIG, Device.cpu(), 11)) {
      assertThrows(IllegalArgumentException.class, () -> model.computeDtype(DataType.FLOAT64));
      assertEquals(DataType.FLOAT32, model.computeDtype());
    }
  }
}
