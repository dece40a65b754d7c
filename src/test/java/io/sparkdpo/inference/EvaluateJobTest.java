package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.data.TextPrompts;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The evaluate stage's pieces that need no Spark: run folders, labels, and the arrays handed to GenerationEval. */
class EvaluateJobTest {
  @TempDir
  Path dir;

  @Test
  void labelsRunsByBetaAsWrittenInConfigs() {
    assertEquals("0.1", EvaluateJob.betaText(0.1));
    assertEquals("0.05", EvaluateJob.betaText(0.05));
    assertEquals("2", EvaluateJob.betaText(2.0));
    assertEquals("β=0.5", EvaluateJob.label(0.5));
  }

  @Test
  void readsRewardsAndLogProbsInPromptThenSampleOrder() {
    TextPrompts.Prompt p0 = new TextPrompts.Prompt(0, "a", new int[] {5}, "f", 1);
    TextPrompts.Prompt p1 = new TextPrompts.Prompt(1, "b", new int[] {6}, "f", 2);
    List<SampledPrompt> sampled = List.of(
        new SampledPrompt(p0, List.of(continuation(0, 0.5, new double[] {-1, -2}, new double[] {-1.5, -2.5}),
            continuation(1, -0.25, new double[] {-3}, new double[] {-3.5}))),
        new SampledPrompt(p1, List.of(continuation(0, 1.0, new double[] {}, new double[] {}),
            continuation(1, 0.0, new double[] {-4}, new double[] {-4.5}))));
    double[][] rewards = SampledArrays.rewards(sampled);
    assertArrayEquals(new double[] {0.5, -0.25}, rewards[0]);
    assertArrayEquals(new double[] {1.0, 0.0}, rewards[1]);
    double[][] logps = SampledArrays.logProbs(sampled);
    assertEquals(4, logps.length);
    assertArrayEquals(new double[] {-3}, logps[1]);
    assertArrayEquals(new double[] {-4.5}, SampledArrays.scorerLogProbs(sampled)[3]);
  }

  @Test
  void refusesSamplesThatWereNotScoredByPiSft() {
    TextPrompts.Prompt p = new TextPrompts.Prompt(3, "a", new int[] {5}, "f", 1);
    List<SampledPrompt> sampled = List.of(new SampledPrompt(p, List.of(continuation(0, 0, new double[] {-1}, null))));
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> SampledArrays.scorerLogProbs(sampled));
    assertEquals("prompt 3, sample 0 has no scorer log-probs", e.getMessage());
  }

  @Test
  void refusesAFolderThatIsNotAFinishedDpoRun() throws IOException {
    Storage storage = Storage.local();
    Path run = dir.resolve("run");
    IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
        () -> EvaluateJob.readRunSpec(storage, run.toString()));
    assertTrue(missing.getMessage().endsWith("is not a training run folder: run.json is missing"),
        missing.getMessage());
    Files.createDirectories(run);
    Files.writeString(run.resolve("run.json"), "{\"spec\": {\"stage\": \"sft\", \"dpo\": null}}");
    IllegalArgumentException sft = assertThrows(IllegalArgumentException.class,
        () -> EvaluateJob.readRunSpec(storage, run.toString()));
    assertTrue(sft.getMessage().contains("not a DPO or PPO run (stage \"sft\")"), sft.getMessage());
    Files.writeString(run.resolve("run.json"), "{\"spec\": {\"stage\": \"dpo\", \"dpo\": {\"beta\": 0.1}}}");
    IllegalArgumentException unfinished = assertThrows(IllegalArgumentException.class,
        () -> EvaluateJob.readRunSpec(storage, run.toString()));
    assertTrue(unfinished.getMessage().endsWith("model/config.json is missing: has the run finished?"),
        unfinished.getMessage());
  }

  private static SampledPrompt.Continuation continuation(int sample, double reward, double[] logps, double[] scorer) {
    return new SampledPrompt.Continuation(sample, new int[logps.length], "text", false, logps, scorer, reward);
  }
}
