package io.sparkdpo.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class SentimentLexiconTest {
  private static SentimentLexicon lexicon(String text) {
    return SentimentLexicon.parse(new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)), "test.csv");
  }

  @Test
  void wordsKeepInnerApostrophesAndSplitOnHyphensAndPunctuation() {
    assertEquals(List.of("i", "can't", "stand", "the", "whale's", "cover", "up", "n00b", "naïve"),
        SentimentLexicon.words("I CAN’T stand -- the Whale's cover-up; 'n00b' NAÏVE!"));
    assertEquals(List.of(), SentimentLexicon.words("  ... -- !"));
  }

  @Test
  void parsesHeaderCommasTabsAndBlankLines() {
    SentimentLexicon lex = lexicon("word,valence\ngood,3\n\nbad\t-3\ncool stuff,3\nself-deluded,-2\n");
    assertEquals(4, lex.size());
    assertEquals(3.0, lex.valence("GOOD"));
    assertEquals(-3.0, lex.valence("bad"));
    assertEquals(-2.0, lex.valence("self deluded"));
    assertNull(lex.valence("whale"));
  }

  @Test
  void matchesTheLongestEntryFirstWithoutOverlap() {
    SentimentLexicon lex = lexicon("good,3\nnot good,-2\ndoes not work,-3\nwork,1\nnot,-1\n");
    List<SentimentLexicon.Match> m = lex.match(SentimentLexicon.words("Not good: it does not work, good work"));
    assertEquals(List.of(new SentimentLexicon.Match(0, 2, -2), new SentimentLexicon.Match(3, 3, -3),
        new SentimentLexicon.Match(6, 1, 3), new SentimentLexicon.Match(7, 1, 1)), m);
  }

  @Test
  void possessiveFallsBackToTheStemButAnEntryWithApostropheWinsAsWritten() {
    SentimentLexicon lex = lexicon("hope,2\ncan't stand,-3\nill,-2\n");
    List<SentimentLexicon.Match> m = lex.match(SentimentLexicon.words("Hope's ship; I can't stand it; I'll go"));
    assertEquals(List.of(new SentimentLexicon.Match(0, 1, 2), new SentimentLexicon.Match(3, 2, -3)), m);
  }

  @Test
  void malformedLinesAreErrorsNamingFileLineAndEntry() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> lexicon("word,valence\ngood,3\nbad,very\n"));
    assertEquals("test.csv line 3: valence 'very' of 'bad' is not a number", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> lexicon("good,3\nno separator here\n"));
    assertTrue(e.getMessage().startsWith("test.csv line 2: expected 'word,valence'"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> lexicon("good,3\nGood,2\n"));
    assertEquals("test.csv line 2: 'Good' is already defined on line 1", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> lexicon("good,3\n--,2\n"));
    assertTrue(e.getMessage().contains("line 2: entry '--' has no words"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> lexicon("good,NaN\n"));
    assertTrue(e.getMessage().contains("line 1: valence of 'good' is not finite"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> lexicon("word,valence\n"));
  }
}
