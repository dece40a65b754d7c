package io.sparkdpo.data.bpe;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * How a tokenizer does on a set of texts, measured through DJL's Hugging Face tokenizer (the reader every stage
 * uses): token, character and word counts, and the texts that do not survive encode-then-decode unchanged.
 * Words are runs of non-white-space characters.
 */
public record TokenizerStats(long texts, long tokens, long chars, long words, List<Integer> roundTripFailures) {
  /**
   * DJL options for reading whole texts: DJL truncates to 512 tokens unless told not to, even when the
   * tokenizer.json asks for no truncation.
   */
  public static final Map<String, String> DJL_OPTIONS =
      Map.of("truncation", "false", "padding", "false", "addSpecialTokens", "false");

  private static final Pattern WORD = Pattern.compile("(?U)\\S+");

  public static TokenizerStats measure(HuggingFaceTokenizer tokenizer, List<String> texts) {
    long tokens = 0;
    long chars = 0;
    long words = 0;
    List<Integer> failures = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      String text = texts.get(i);
      long[] ids = tokenizer.encode(text, false, false).getIds();
      tokens += ids.length;
      chars += text.codePointCount(0, text.length());
      words += WORD.matcher(text).results().count();
      if (!text.equals(tokenizer.decode(ids, false))) {
        failures.add(i);
      }
    }
    return new TokenizerStats(texts.size(), tokens, chars, words, List.copyOf(failures));
  }

  public double tokensPerChar() {
    return chars == 0 ? 0 : (double) tokens / chars;
  }

  public double tokensPerWord() {
    return words == 0 ? 0 : (double) tokens / words;
  }

  @Override
  public String toString() {
    return String.format(java.util.Locale.ROOT,
        "%d texts, %d tokens, %d chars, %d words: %.3f tokens/char, %.3f tokens/word, %d round-trip failures",
        texts, tokens, chars, words, tokensPerChar(), tokensPerWord(), roundTripFailures.size());
  }
}
