package io.sparkdpo.train;

import ai.djl.engine.Engine;
import io.sparkdpo.config.ConfigLoader;
import io.sparkdpo.config.JobConfig;
import io.sparkdpo.io.Storage;
import io.sparkdpo.model.CausalLM;
import io.sparkdpo.testing.ProcStatus;
import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;

/**
 * The training process {@link MemoryCalibrationBench} measures, alone in its JVM so that its peak resident memory
 * (VmHWM) is the training's: opens a DPO {@link TrainingSession} exactly as a worker does (config overrides as
 * arguments) on a prepared folder and a model folder the bench wrote, runs {@code steps} steps, and prints
 * {@code vmhwm-kb <after open> <after each step...>} and {@code step-seconds ...}.
 *
 * <p>Arguments: DATA_DIR STEPS SECTION KEY=VALUE..., SECTION {@code train} (DPO) or {@code reward} (a reward model).
 */
public final class MemoryCalibrationChild {
  private MemoryCalibrationChild() {}

  public static void main(String[] args) {
    String data = args[0];
    int steps = Integer.parseInt(args[1]);
    boolean reward = args[2].equals("reward");
    JobConfig cfg = ConfigLoader.load(null, Arrays.asList(args).subList(3, args.length));
    Engine.getEngine("PyTorch");
    Storage storage = Storage.local();
    PreparedData d = PreparedData.open(storage, data);
    SessionSpec spec = reward ? SessionSpec.reward(cfg.model(), cfg.reward(), steps, d.trainRows())
        : SessionSpec.dpo(cfg.model(), cfg.train(), cfg.model().path(), cfg.reference().dtype(), steps, d.trainRows());
    StringBuilder hwm = new StringBuilder();
    StringBuilder seconds = new StringBuilder();
    try (TrainingSession<?> session = TrainingSession.open(spec, storage, CausalLM.device("cpu"), d.trainFiles(),
        d.evalFiles(), GradientReducer.SINGLE, Optional.empty())) {
      hwm.append(ProcStatus.self("VmHWM"));
      for (int s = 1; s <= steps; s++) {
        long start = System.nanoTime();
        TrainingSession.Outcome o = session.step(s);
        seconds.append(String.format(Locale.ROOT, " %.2f", (System.nanoTime() - start) / 1e9));
        hwm.append(' ').append(ProcStatus.self("VmHWM"));
        if (!Double.isFinite(o.metrics().get(MetricNames.LOSS))) {
          throw new IllegalStateException("step " + s + ": loss " + o.metrics().get(MetricNames.LOSS));
        }
      }
    }
    System.out.println("vmhwm-kb " + hwm);
    System.out.println("step-seconds" + seconds);
    System.out.flush();
  }
}
