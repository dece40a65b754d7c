package io.sparkdpo.data.bpe;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * GPT-2's pre-tokenization: splits text into words (a leading space stays with the word), digit runs, punctuation
 * runs and whitespace runs, so that merges never cross those boundaries. Hugging Face's {@code ByteLevel}
 * pre-tokenizer with {@code use_regex: true} applies the same expression; {@code (?U)} makes {@code \s} match Unicode
 * white space as Oniguruma does there, so both split identically (U+3000, U+00A0 included).
 */
public final class Gpt2PreTokenizer {
  public static final Pattern PATTERN = Pattern.compile(
      "(?U)'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");

  private Gpt2PreTokenizer() {}

  /** The pieces of {@code text}, in order; their concatenation is {@code text}. */
  public static List<String> split(String text) {
    List<String> pieces = new ArrayList<>();
    Matcher m = PATTERN.matcher(text);
    int end = 0;
    while (m.find()) {
      if (m.start() > end) {
        // The expression covers every character class, so this only guards against a future edit of it.
        pieces.add(text.substring(end, m.start()));
      }
      pieces.add(m.group());
      end = m.end();
    }
    if (end < text.length()) {
      pieces.add(text.substring(end));
    }
    return pieces;
  }
}
