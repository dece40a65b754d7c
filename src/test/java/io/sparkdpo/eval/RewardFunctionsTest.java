package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RewardFunctionsTest {
  @TempDir
  Path dir;

  @Test
  void afinnLoadsAllOf2477EntriesFromTheClasspath() {
    LexiconSentimentReward afinn = (LexiconSentimentReward) RewardFunctions.load("afinn");
    assertEquals("afinn-111", afinn.name());
    assertEquals(LexiconSentimentReward.DEFAULT_MIN_WORDS, afinn.minWords());
    assertTrue(afinn.toString().contains("2477 entries"), afinn.toString());
  }

  @Test
  void afinnScoresMeanValencePerWordWithPhrasesAndCase() {
    RewardFunction afinn = RewardFunctions.load("afinn");
    // 12 words; good +3, "can't stand" -3 (one phrase, not "stand" alone), bad -3: -3 / 12.
    assertEquals(-0.25, afinn.score("Call me Ishmael.", "This is a GOOD day, but I can't stand the bad weather."),
        1e-15);
    // 12 words; happy +3, love +3, "does not work" -3 (not "work" alone): 3 / 12.
    assertEquals(3.0 / 12, afinn.score("", "Happy sailors love the sea even if the pump does not work"), 1e-15);
  }

  @Test
  void shortContinuationsAreScoredAsIfPaddedToTenWords() {
    RewardFunction afinn = RewardFunctions.load("afinn");
    assertEquals(0.6, afinn.score("", "Good, good."), 1e-15);
    assertEquals(0.0, afinn.score("", ""), 0.0);
    // Same density, more words: the same score, so length alone earns nothing.
    String ten = "good sea whale ship mast sail deck rope oar wave ";
    assertEquals(afinn.score("", ten), afinn.score("", ten + ten + ten), 1e-15);
  }

  @Test
  void onlyTheContinuationIsScored() {
    RewardFunction afinn = RewardFunctions.load("afinn");
    assertEquals(afinn.score("", "the whale was happy"), afinn.score("terrible awful prompt", "the whale was happy"));
  }

  @Test
  void lexiconSpecReadsAWordValenceFileThroughStorage() throws IOException {
    Path file = dir.resolve("my-words.csv");
    Files.writeString(file, "word,valence\nwhale,5\nsquid,-5\n");
    RewardFunction r = RewardFunctions.load("lexicon:" + file.toUri(), Storage.local());
    assertEquals("lexicon:my-words.csv", r.name());
    // 8 words, floored to 10: (5 - 5 + 5) / 10.
    assertEquals(0.5, r.score("", "The whale ate a squid and another whale"), 1e-15);
    assertEquals(1.0, RewardFunctions.load("lexicon:" + file).score("", "whale whale"), 1e-15);
  }

  @Test
  void classNameSpecInstantiatesAUserRewardWithItsNoArgumentConstructor() {
    RewardFunction r = RewardFunctions.load(LengthPenaltyReward.class.getName());
    assertInstanceOf(LengthPenaltyReward.class, r);
    assertEquals(-5.0, r.score("x", "hello"));
  }

  @Test
  void badSpecsFailNamingTheProblem() {
    assertMessage("no such class", "com.example.NoSuchReward");
    assertMessage("does not implement io.sparkdpo.eval.RewardFunction",
        LengthPenaltyReward.NotAReward.class.getName());
    assertMessage("no public no-argument constructor", LengthPenaltyReward.NeedsArgument.class.getName());
    assertMessage("failed in its constructor: java.lang.IllegalStateException: model file missing",
        LengthPenaltyReward.Broken.class.getName());
    assertMessage("reward spec is empty", " ");
    assertMessage("names no lexicon file", "lexicon:");
    UncheckedIOException e = assertThrows(UncheckedIOException.class,
        () -> RewardFunctions.load("lexicon:" + dir.resolve("missing.csv")));
    assertTrue(e.getMessage().contains("missing.csv"), e.getMessage());
  }

  private static void assertMessage(String expected, String spec) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RewardFunctions.load(spec));
    assertTrue(e.getMessage().contains(expected), e.getMessage());
  }
}
