package io.sparkdpo.eval;

import java.util.List;

/**
 * Sentiment of a continuation by a valence lexicon: the summed valence of its matched words and phrases divided by
 * its word count, floored at {@code minWords}. With AFINN the score lies in [-5, +5]; it is the mean valence per
 * word, and positive text scores higher.
 *
 * <p>Why a per-word mean and not the plain sum: the DPO paper's IMDb reward is a classifier's probability of
 * "positive", which judges how positive a text is, not how long it is. A sum grows with length, so a policy could
 * raise it by rambling (and labelling K samples by their sum would prefer the longest); the mean removes that. The
 * floor stops the opposite exploit: without it a two-word "good day" (+1.5 per word) would beat any honest
 * sentence, so continuations shorter than {@code minWords} count as if padded with neutral words.
 *
 * <p>Only the continuation is scored: the prompt is shared by every continuation compared, and scoring it would
 * only dilute the difference.
 */
public final class LexiconSentimentReward implements RewardFunction {
  /** Ten words: about a third of a typical 48-token continuation. */
  public static final int DEFAULT_MIN_WORDS = 10;

  private final String name;
  private final SentimentLexicon lexicon;
  private final int minWords;

  public LexiconSentimentReward(String name, SentimentLexicon lexicon, int minWords) {
    if (minWords < 1) {
      throw new IllegalArgumentException("minWords must be >= 1, got " + minWords);
    }
    this.name = name;
    this.lexicon = lexicon;
    this.minWords = minWords;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public double score(String prompt, String continuation) {
    List<String> words = SentimentLexicon.words(continuation);
    double sum = 0;
    for (SentimentLexicon.Match m : lexicon.match(words)) {
      sum += m.valence();
    }
    return sum / Math.max(words.size(), minWords);
  }

  public int minWords() {
    return minWords;
  }

  @Override
  public String toString() {
    return name + " (mean valence per word, " + lexicon.size() + " entries, at least " + minWords + " words)";
  }
}
