package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PreferenceLabelerTest {
  @TempDir
  Path dir;

  /** Reward = the number of 'x' characters, so tests can state rewards in the text. */
  private static final RewardFunction COUNT_X = new RewardFunction() {
    @Override
    public String name() {
      return "count-x";
    }

    @Override
    public double score(String prompt, String continuation) {
      return continuation.chars().filter(c -> c == 'x').count();
    }
  };

  private final PreferenceLabeler labeler = new PreferenceLabeler(COUNT_X);

  @Test
  void chosenIsTheHighestScoredAndRejectedTheLowest() {
    PreferenceLabeler.Result r = labeler.label(List.of(
        new PreferenceLabeler.PromptSamples("p1", List.of("x", "xxx", "", "xx"))));
    assertEquals(1, r.pairs().size());
    PreferenceLabeler.LabeledPair pair = r.pairs().get(0);
    assertEquals(new PreferenceLabeler.LabeledPair("p1", "xxx", "", 3.0, 0.0), pair);
  }

  @Test
  void promptsWhoseContinuationsAllTieAreDroppedAndCounted() {
    PreferenceLabeler.Result r = labeler.label(List.of(
        new PreferenceLabeler.PromptSamples("tie", List.of("ax", "bx", "cx")),
        new PreferenceLabeler.PromptSamples("kept", List.of("a", "bx")),
        new PreferenceLabeler.PromptSamples("tie at zero", List.of("a", "b"))));
    assertEquals(3, r.prompts());
    assertEquals(2, r.droppedTies());
    assertEquals(0, r.droppedIdenticalTexts());
    assertEquals(List.of("kept"), r.pairs().stream().map(PreferenceLabeler.LabeledPair::prompt).toList());
  }

  @Test
  void theFirstSampledContinuationWinsATieForBestOrWorst() {
    PreferenceLabeler.LabeledPair p = PreferenceLabeler.pick("p", List.of("a", "xx-1", "b", "xx-2"),
        new double[] {0, 2, 0, 2}).orElseThrow();
    assertEquals("xx-1", p.chosen());
    assertEquals("a", p.rejected());
  }

  @Test
  void identicalBestAndWorstTextsAreDroppedEvenIfAScorerDisagreesWithItself() {
    assertTrue(PreferenceLabeler.pick("p", List.of("same", "same"), new double[] {1, 0}).isEmpty());
    RewardFunction flaky = new RewardFunction() {
      private int calls;

      @Override
      public String name() {
        return "flaky";
      }

      @Override
      public double score(String prompt, String continuation) {
        return calls++;
      }
    };
    PreferenceLabeler.Result r = new PreferenceLabeler(flaky).label(List.of(
        new PreferenceLabeler.PromptSamples("p", List.of("same", "same"))));
    assertEquals(0, r.pairs().size());
    assertEquals(1, r.droppedIdenticalTexts());
  }

  @Test
  void trlRowsRoundTripExactlyThroughJsonLines() throws IOException {
    PreferenceLabeler.Result r = labeler.label(List.of(
        new PreferenceLabeler.PromptSamples("Call me \"Ishmael\".", List.of(" Some years ago—never mind", " x\nnew")),
        new PreferenceLabeler.PromptSamples("Whale", List.of("xx ünïcode", "none"))));
    Path out = dir.resolve("pairs.jsonl");
    PreferenceLabeler.writeTrlJsonl(Storage.local(), out.toUri().toString(), r.pairs());
    assertEquals("{\"chosen\":\" x\\nnew\",\"prompt\":\"Call me \\\"Ishmael\\\".\","
        + "\"rejected\":\" Some years ago—never mind\"}\n"
        + "{\"chosen\":\"xx ünïcode\",\"prompt\":\"Whale\",\"rejected\":\"none\"}\n", Files.readString(out));
  }

  @Test
  void badInputIsAnErrorNamingPromptAndContinuation() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> labeler.label(List.of(
        new PreferenceLabeler.PromptSamples("a", List.of("x", "y")),
        new PreferenceLabeler.PromptSamples("b", List.of("only one")))));
    assertEquals("prompt 1 has 1 continuation(s); labelling needs at least 2", e.getMessage());
    RewardFunction nan = new RewardFunction() {
      @Override
      public String name() {
        return "nan";
      }

      @Override
      public double score(String prompt, String continuation) {
        return continuation.isEmpty() ? Double.NaN : 1;
      }
    };
    e = assertThrows(IllegalArgumentException.class, () -> new PreferenceLabeler(nan).label(List.of(
        new PreferenceLabeler.PromptSamples("a", List.of("x", "")))));
    assertEquals("reward nan gave NaN for prompt 0, continuation 1; rewards must be finite", e.getMessage());
  }
}
