package io.sparkdpo.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
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
 * {@code softmax(q k^T / sqrt(d) + bias) v} over [B, H, T, d] arrays, by libtorch's fused
 * {@code scaled_dot_product_attention} (on CPU a flash-attention kernel that never materialises the T x T
 * scores and skips the masked half under a causal mask) or, as a fallback and a cross-check, by explicit ops.
 *
 * <p>DJL's PyTorch engine exposes no binding for the fused op, but it runs TorchScript modules with autograd.
 * So a one-method TorchScript module calling it is assembled here from source text (TorchScript archives
 * are zip files of code plus pickled, here empty, state) and loaded once per JVM. Set the system property
 * {@code sparkdpo.attention=explicit} to use the explicit ops everywhere.
 */
final class ScaledDotProductAttention {
  private static final Logger LOG = LoggerFactory.getLogger(ScaledDotProductAttention.class);
  private static final String CODE = String.join("\n",
      "class Sdpa(Module):",
      "  __parameters__ = []",
      "  __buffers__ = []",
      "  training : bool",
      "  def forward(self: __torch__.Sdpa,",
      "    q: Tensor,",
      "    k: Tensor,",
      "    v: Tensor,",
      "    bias: Tensor) -> Tensor:",
      "    if torch.eq(torch.numel(bias), 0):",
      "      return torch.scaled_dot_product_attention(q, k, v, None, 0., True)",
      "    else:",
      "      return torch.scaled_dot_product_attention(q, k, v, bias, 0., False)",
      "");
  private static volatile PtSymbolBlock module;
  private static volatile boolean unavailable;

  private ScaledDotProductAttention() {}

  /** Whether the fused op is reachable (tried once; a failure is logged and the explicit path used). */
  static boolean fusedAvailable() {
    if (module == null && !unavailable) {
      synchronized (ScaledDotProductAttention.class) {
        if (module == null && !unavailable) {
          if ("explicit".equals(System.getProperty("sparkdpo.attention"))) {
            unavailable = true;
          } else {
            try {
              module = JniUtils.loadModule((PtNDManager) NDManager.newBaseManager("PyTorch"),
                  new ByteArrayInputStream(archive()), false, false);
            } catch (IOException | RuntimeException e) {
              LOG.warn("fused scaled_dot_product_attention is not reachable, using explicit attention: {}",
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
   * Attention of q [B, H, Tq, d] over k, v [B, H, Tk, d]. {@code bias} is an additive mask broadcastable to
   * [B, H, Tq, Tk], or null for the plain causal mask (which needs Tq == Tk). The result [B, H, Tq, d] is
   * attached to q's manager.
   */
  static NDArray attend(NDArray q, NDArray k, NDArray v, NDArray bias, boolean fused) {
    if (fused && fusedAvailable()) {
      NDManager m = q.getManager();
      NDArray mask = bias != null ? bias : m.zeros(new Shape(0));
      // Grad mode on this thread decides whether autograd records, exactly as for any eager op.
      return IValueUtils.forward(module, new NDList(q, k, v, mask), true).singletonOrThrow();
    }
    NDArray b = bias != null ? bias : causalBias(q.getManager(), q.getShape().get(2));
    double scale = 1.0 / Math.sqrt(q.getShape().get(3));
    return q.mul(scale).matMul(k.transpose(0, 1, 3, 2)).add(b).softmax(-1).matMul(v);
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
  static byte[] archive() {
    byte[] state = {(byte) 0x80, 2, 'c', '_', '_', 't', 'o', 'r', 'c', 'h', '_', '_', '\n', 'S', 'd', 'p', 'a', '\n',
        'q', 0, ')', (byte) 0x81, '}', '(', 'X', 8, 0, 0, 0, 't', 'r', 'a', 'i', 'n', 'i', 'n', 'g', 'q', 1,
        (byte) 0x88, 'u', 'b', 'q', 2, '.'};
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      put(zip, "sdpa/data.pkl", state);
      put(zip, "sdpa/code/__torch__.py", CODE.getBytes(StandardCharsets.UTF_8));
      put(zip, "sdpa/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'});
      put(zip, "sdpa/version", "3\n".getBytes(StandardCharsets.UTF_8));
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
