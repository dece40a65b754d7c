package io.sparkdpo.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.sparkdpo.config.TrainSettings;
import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.model.ActivationCheckpoints;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.model.ModelConfig;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import io.sparkdpo.testing.ProcStatus;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Peak resident memory (VmHWM) and time of a DPO training micro-batch (policy forward of chosen + rejected, loss,
 * backward; precomputed reference log-probs, no optimizer) on a ~30M Llama (hidden 512, 10 layers, vocab 4096, tied),
 * with and without gradient checkpointing, at 2 pairs of 256 + 256 tokens and of 512 + 512 (4 sequences of 512 or
 * 1,024 tokens). Each configuration runs in its own JVM, so VmHWM is that configuration's peak; the figure reported
 * is the peak minus the peak after creating the model (parameters, gradients not yet allocated).
 * Run: {@code mvn -B -o -Pbench test -Dtest=GradientCheckpointingBench} ({@code -Dbench.rounds=N} timed steps after
 * one warm-up, default 3; {@code -Dbench.lengths=256,512} the prompt = response lengths).
 */
@Tag("bench")
public class GradientCheckpointingBench {
  static final ModelConfig MEDIUM = ModelConfig.llama(4096, 512, 1408, 10, 8, 8, true);
  static final int PAIRS = 2;

  @Test
  void reportsPeakMemoryAndStepTimeWithAndWithoutCheckpointing() throws Exception {
    int rounds = Integer.getInteger("bench.rounds", 3);
    List<String> lines = new ArrayList<>();
    for (String length : System.getProperty("bench.lengths", "256,512").split(",")) {
      for (boolean checkpointing : new boolean[] {false, true}) {
        String line = child(length.trim(), checkpointing, rounds);
        System.out.println(line);
        lines.add(line);
      }
    }
    assertTrue(lines.size() >= 2);
  }

  private static String child(String length, boolean checkpointing, int rounds) throws Exception {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx1g", "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"), Child.class.getName(), length,
        Boolean.toString(checkpointing), Integer.toString(rounds)));
    Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String result = null;
    try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = out.readLine(); line != null; line = out.readLine()) {
        if (line.startsWith("RESULT ")) {
          result = line.substring(7);
        }
      }
    }
    if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0 || result == null) {
      throw new IllegalStateException("benchmark child " + command + " failed (exit " + p.exitValue() + ")");
    }
    return result;
  }

  /** One configuration: {@code main(promptAndResponseLength, checkpointing, rounds)}. */
  public static final class Child {
    public static void main(String[] args) {
      int length = Integer.parseInt(args[0]);
      boolean checkpointing = Boolean.parseBoolean(args[1]);
      int rounds = Integer.parseInt(args[2]);
      SplittableRandom random = new SplittableRandom(11);
      List<PreparedPair> batch = new ArrayList<>();
      for (int i = 0; i < PAIRS; i++) {
        int[] prompt = random.ints(length, 2, MEDIUM.vocabSize()).toArray();
        int[] chosen = random.ints(length, 2, MEDIUM.vocabSize()).toArray();
        int[] rejected = random.ints(length, 2, MEDIUM.vocabSize()).toArray();
        batch.add(new PreparedPair("p" + i, "bench", i, "", "", "", prompt, chosen, rejected, length, length, length,
            false, -2000.0, -2100.0));
      }
      TrainSettings train = TrainingFixtures.config("train.reference_mode=precomputed").train();
      try (CausalLM policy = CausalLM.create(MEDIUM, CausalLM.device("cpu"), 1);
           DpoObjective dpo = new DpoObjective(policy, null, DpoLoss.of(train))) {
        List<ai.djl.ndarray.NDArray> params = new ArrayList<>();
        policy.parameters().values().forEach(p -> params.add(p.getArray()));
        GradientAccumulator zero = new GradientAccumulator(params);
        long afterModel = ProcStatus.self("VmHWM");
        double[] seconds = new double[rounds];
        double loss = 0;
        for (int r = -1; r < rounds; r++) {
          long start = System.nanoTime();
          try (NDManager scope = NDManager.newBaseManager();
              GradientCollector collector = Engine.getEngine("PyTorch").newGradientCollector();
              ActivationCheckpoints checkpoints = checkpointing ? policy.gradientCheckpointing(scope) : null) {
            Objective.Forward f = dpo.forward(scope, batch);
            loss = f.lossValue();
            collector.backward(f.lossSum());
            if (checkpoints != null) {
              checkpoints.backward();
            }
          }
          zero.zero(); // as the optimizer step does
          if (r >= 0) {
            seconds[r] = (System.nanoTime() - start) / 1e9;
          }
        }
        long peak = ProcStatus.self("VmHWM");
        Arrays.sort(seconds);
        int tokens = PAIRS * 2 * 2 * length;
        System.out.printf(Locale.ROOT, "RESULT params=%.1fM sequences=%d x %d tokens checkpointing=%s: VmHWM after model "
            + "%d MB, peak %d MB, step adds %d MB; median step %.2f s (%.0f tokens/s); loss %.4f%n",
            policy.numParameters() / 1e6, 2 * PAIRS, 2 * length, checkpointing, afterModel >> 10, peak >> 10,
            (peak - afterModel) >> 10, seconds[rounds / 2], tokens / seconds[rounds / 2], loss / PAIRS);
      }
    }
  }
}
