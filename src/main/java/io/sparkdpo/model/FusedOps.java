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
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * libtorch kernels that DJL's PyTorch engine has no (differentiable) binding for, reached through TorchScript:
 * {@code scaled_dot_product_attention} (on CPU a flash-attention kernel that never materialises the T x T
 * scores and skips the masked half of a causal mask), {@code silu} (one kernel forward and one backward
 * instead of sigmoid-and-multiply), a complex multiply for rotary embeddings (one pass instead of five) and
 * {@code logsumexp} for response log-probabilities (in place, one [rows, V] temporary). DJL runs TorchScript modules with autograd, so a one-method module per op
 * is assembled here from source text (a TorchScript archive is a zip of code plus pickled, here empty, state)
 * and loaded once per JVM. Where that fails the same maths runs as explicit DJL ops, which tests compare
 * against; the system property {@code sparkdpo.fused=false} forces the explicit path.
 */
final class FusedOps {
  private static final Logger LOG = LoggerFactory.getLogger(FusedOps.class);
  private static final String ATTENTION = String.join("\n",
      "class Attention(Module):",
      "  __parameters__ = []",
      "  __buffers__ = []",
      "  training : bool",
      "  def forward(self: __torch__.Attention,",
      "    q: Tensor,",
      "    k: Tensor,",
      "    v: Tensor,",
      "    bias: Tensor) -> Tensor:",
      "    if torch.eq(torch.numel(bias), 0):",
      "      return torch.scaled_dot_product_attention(q, k, v, None, 0., True)",
      "    else:",
      "      return torch.scaled_dot_product_attention(q, k, v, bias, 0., False)",
      "");
  private static final String SWIGLU = String.join("\n",
      "class SwiGlu(Module):",
      "  __parameters__ = []",
      "  __buffers__ = []",
      "  training : bool",
      "  def forward(self: __torch__.SwiGlu,",
      "    gate: Tensor,",
      "    up: Tensor) -> Tensor:",
      "    return torch.mul(torch.silu(gate), up)",
      "");
  private static final String ROPE = String.join("\n",
      "class Rope(Module):",
      "  __parameters__ = []",
      "  __buffers__ = []",
      "  training : bool",
      "  def forward(self: __torch__.Rope,",
      "    x: Tensor,",
      "    rotation: Tensor) -> Tensor:",
      "    shape = torch.size(x)",
      "    pairs = torch.reshape(x, [shape[0], shape[1], shape[2], torch.floordiv(shape[3], 2), 2])",
      "    turned = torch.mul(torch.view_as_complex(pairs), torch.view_as_complex(rotation))",
      "    return torch.reshape(torch.view_as_real(turned), shape)",
      "");
  private static final String TARGET_LOG_PROB = String.join("\n",
      "class TargetLogProb(Module):",
      "  __parameters__ = []",
      "  __buffers__ = []",
      "  training : bool",
      "  def forward(self: __torch__.TargetLogProb,",
      "    logits: Tensor,",
      "    target: Tensor) -> Tensor:",
      "    picked = torch.squeeze(torch.gather(logits, 1, target), 1)",
      "    return torch.sub(picked, torch.logsumexp(logits, [1]))",
      "");
  private static volatile PtSymbolBlock targetLogProb;
  private static volatile PtSymbolBlock rope;
  private static volatile PtSymbolBlock attention;
  private static volatile PtSymbolBlock swiglu;
  private static volatile boolean unavailable;

  private FusedOps() {}

  /** Whether the fused ops are reachable (tried once; a failure is logged and the explicit path used). */
  static boolean available() {
    if (attention == null && !unavailable) {
      synchronized (FusedOps.class) {
        if (attention == null && !unavailable) {
          if ("false".equals(System.getProperty("sparkdpo.fused"))) {
            unavailable = true;
          } else {
            try {
              PtNDManager manager = (PtNDManager) NDManager.newBaseManager("PyTorch");
              rope = JniUtils.loadModule(manager, new ByteArrayInputStream(archive("Rope", ROPE)), false, false);
              swiglu = JniUtils.loadModule(manager, new ByteArrayInputStream(archive("SwiGlu", SWIGLU)), false,
                  false);
              targetLogProb = JniUtils.loadModule(manager,
                  new ByteArrayInputStream(archive("TargetLogProb", TARGET_LOG_PROB)), false, false);
              attention = JniUtils.loadModule(manager, new ByteArrayInputStream(archive("Attention", ATTENTION)),
                  false, false);
            } catch (IOException | RuntimeException e) {
              LOG.warn("fused libtorch ops are not reachable through TorchScript, using explicit ops: {}",
                  e.toString());
              unavailable = true;
            }
          }
        }
      }
    }
    return !unavailable;
  }

  /**
   * {@code softmax(q k^T / sqrt(d) + bias) v} for q [B, H, Tq, d] over k, v [B, H, Tk, d]. {@code bias} is an
   * additive mask broadcastable to [B, H, Tq, Tk], or null for the plain causal mask (which needs Tq == Tk).
   * The result [B, H, Tq, d] is attached to q's manager.
   */
  static NDArray attention(NDArray q, NDArray k, NDArray v, NDArray bias, boolean fused) {
    if (fused && available()) {
      NDArray mask = bias != null ? bias : q.getManager().zeros(new Shape(0));
      return run(attention, new NDList(q, k, v, mask));
    }
    NDArray b = bias != null ? bias : causalBias(q.getManager(), q.getShape().get(2));
    double scale = 1.0 / Math.sqrt(q.getShape().get(3));
    if (q.getDataType() == DataType.FLOAT32) {
      return ScalarOps.mul(q, scale).matMul(k.transpose(0, 1, 3, 2)).add(b).softmax(-1).matMul(v);
    }
    // transformers' eager attention in a lower precision: scores and mask in the model dtype, softmax in float32
    // cast back; DJL's softmax of a bf16 array would abort (see Casts).
    NDArray scores = ScalarOps.mul(q.matMul(k.transpose(0, 1, 3, 2)), scale).add(bias != null ? b : Casts.typeAs(
        b.maximum(-65504f), q));
    return Casts.typeAs(Casts.to(scores, DataType.FLOAT32).softmax(-1), q).matMul(v);
  }

  /**
   * Rotates x [B, T, heads, hd], read as hd/2 interleaved (real, imaginary) pairs, by {@code rotation}
   * [B or 1, T, 1, hd/2, 2] holding (cos, sin) pairs: a complex multiply. DJL's own complex view has no
   * autograd, hence TorchScript. Attached to x's manager.
   */
  static NDArray rope(NDArray x, NDArray rotation, boolean fused) {
    if (x.getDataType() != DataType.FLOAT32) {
      // As transformers: cos and sin cast to the activations' dtype, each product rounded there. torch has no
      // bfloat16 complex type, so lower precisions take the explicit ops.
      rotation = Casts.typeAs(rotation, x);
    } else if (fused && available()) {
      return run(rope, new NDList(x, rotation));
    }
    Shape s = x.getShape();
    NDList pairs = x.reshape(s.get(0), s.get(1), s.get(2), s.get(3) / 2, 2).split(2, 4);
    NDList cs = rotation.split(2, 4);
    NDArray re = pairs.get(0).mul(cs.get(0)).sub(pairs.get(1).mul(cs.get(1)));
    NDArray im = pairs.get(0).mul(cs.get(1)).add(pairs.get(1).mul(cs.get(0)));
    return re.concat(im, 4).reshape(s);
  }

  /**
   * log softmax(logits)[target] per row, as logits[target] - logsumexp(logits), for float32 logits [m, V] and
   * int64 targets [m, 1]: float32 [m], attached to logits' manager. libtorch's logsumexp subtracts the row max and
   * exponentiates in place, so the pass holds one [m, V] temporary besides the logits; the explicit ops hold two.
   */
  static NDArray targetLogProbs(NDArray logits, NDArray target, boolean fused) {
    if (fused && available()) {
      return run(targetLogProb, new NDList(logits, target));
    }
    // max + log(sum(exp(x - max))); the max is detached: its gradient cancels in the maths.
    NDArray max = logits.max(new int[] {1}, true).stopGradient();
    NDArray shifted = logits.sub(max);
    NDArray exp = shifted.exp();
    shifted.close();
    NDArray logSumExp = exp.sum(new int[] {1}, true).log().add(max);
    exp.close();
    return logits.gather(target, 1).sub(logSumExp).reshape(-1);
  }

  /** {@code silu(gate) * up}, attached to gate's manager. */
  static NDArray swiglu(NDArray gate, NDArray up, boolean fused) {
    if (fused && available()) {
      return run(swiglu, new NDList(gate, up));
    }
    return gate.mul(gate.getNDArrayInternal().sigmoid()).mul(up);
  }

  /**
   * Runs a module as eager ops: with the graph executor's optimisation off (a per-thread switch) TorchScript
   * neither profiles nor swaps the kernels' own backward functions for decomposed symbolic gradients. Grad
   * mode on this thread decides whether autograd records, exactly as for any eager op.
   */
  private static NDArray run(PtSymbolBlock module, NDList inputs) {
    JniUtils.setGraphExecutorOptimize(false);
    return IValueUtils.forward(module, inputs, true).singletonOrThrow();
  }

  static NDArray causalBias(NDManager manager, long time) {
    int t = Math.toIntExact(time);
    float[] bias = new float[t * t];
    for (int i = 0; i < t; i++) {
      for (int j = i + 1; j < t; j++) {
        bias[i * t + j] = CausalLM.MASKED;
      }
    }
    return manager.create(bias, new Shape(t, t));
  }

  /** A TorchScript archive: code, pickled module state (just {@code training}), constants, format version. */
  static byte[] archive(String className, String code) {
    ByteArrayOutputStream state = new ByteArrayOutputStream();
    state.writeBytes(new byte[] {(byte) 0x80, 2, 'c'}); // PROTO 2, GLOBAL "__torch__\n<class>\n"
    state.writeBytes(("__torch__\n" + className + "\n").getBytes(StandardCharsets.US_ASCII));
    // BINPUT 0, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK, "training", BINPUT 1, NEWTRUE, SETITEMS, BUILD, BINPUT 2, STOP
    state.writeBytes(new byte[] {'q', 0, ')', (byte) 0x81, '}', '(', 'X', 8, 0, 0, 0, 't', 'r', 'a', 'i', 'n', 'i',
        'n', 'g', 'q', 1, (byte) 0x88, 'u', 'b', 'q', 2, '.'});
    String dir = className.toLowerCase(java.util.Locale.ROOT) + "/";
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      put(zip, dir + "data.pkl", state.toByteArray());
      put(zip, dir + "code/__torch__.py", code.getBytes(StandardCharsets.UTF_8));
      put(zip, dir + "constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'}); // PROTO 2, EMPTY_TUPLE, STOP
      put(zip, dir + "version", "3\n".getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  private static void put(ZipOutputStream zip, String name, byte[] data) throws IOException {
    ZipEntry e = new ZipEntry(name);
    e.setMethod(ZipEntry.STORED);
    e.setSize(data.length);
    CRC32 crc = new CRC32();
    crc.update(data);
    e.setCrc(crc.getValue());
    zip.putNextEntry(e);
    zip.write(data);
    zip.closeEntry();
  }
}
