package io.sparkdpo.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import io.sparkdpo.inference.GenerateManifest;
import io.sparkdpo.inference.ReferenceManifest;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The reference and generate commands end to end, with their default output folder and the rerun message. */
class ReferenceCommandsTest {
  @TempDir
  Path dir;

  @Test
  void referenceWritesNextToThePreparedFolderAndSaysWhenItReusesTheResult() {
    Path prepared = dir.resolve("prepared");
    PrepareCommandTest.Run p = PrepareCommandTest.run("prepare", "--input",
        "sample-data/preferences/trl-sample.jsonl", "--output", prepared.toString(), "--set", "prepare.max_length=160");
    assertEquals(0, p.exit(), p.err());
    String[] args = {"reference", "--data", prepared.toString(), "--model", "builtin:tiny", "--set",
        "model.seed=424242", "--partitions", "3"};
    PrepareCommandTest.Run first = PrepareCommandTest.run(args);
    assertEquals(0, first.exit(), first.err());
    assertTrue(first.out().contains("reference: 50 pairs"), first.out());
    assertTrue(first.out().contains("model loaded 1 time(s) by 3 task(s) in 1 executor JVM(s)"), first.out());
    ReferenceManifest m = ReferenceManifest.read(Storage.local(), dir.resolve("prepared-referenced").toString());
    assertEquals(50, m.reference().pairs());

    PrepareCommandTest.Run again = PrepareCommandTest.run(args);
    assertEquals(0, again.exit(), again.err());
    assertTrue(again.out().contains("is up to date") && again.out().contains("reusing the stored log-probs"),
        again.out());
  }

  @Test
  void generateWritesPairsAndEvalPromptsThenHasNothingToDo() throws Exception {
    Path out = dir.resolve("generated");
    String[] args = {"generate", "--model", "builtin:tiny", "--prompts", "sample-data/corpus/moby-dick/train",
        "--eval-prompts", "sample-data/corpus/moby-dick/heldout", "--output", out.toString(), "--num-prompts", "4",
        "--samples-per-prompt", "3", "--seed", "11", "--set", "generate.max_new_tokens=8", "--set",
        "evaluate.num_prompts=3", "--set", "evaluate.reward=io.sparkdpo.eval.LengthPenaltyReward"};
    PrepareCommandTest.Run first = PrepareCommandTest.run(args);
    assertEquals(0, first.exit(), first.err());
    assertTrue(first.out().contains("generate: 4 prompts x 3 samples from builtin:tiny"), first.out());
    GenerateManifest m = GenerateManifest.read(Storage.local(), out.toString());
    assertEquals(12, m.counts().samples());
    assertEquals(3, m.counts().evalPrompts());
    assertEquals(m.counts().pairs(), Files.readAllLines(out.resolve("pairs.jsonl")).size());
    PrepareCommandTest.Run again = PrepareCommandTest.run(args);
    assertTrue(again.out().contains("is up to date") && again.out().contains("nothing to do"), again.out());
  }
}
