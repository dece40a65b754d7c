package io.sparkdpo.eval;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A word list with valences (AFINN style: {@code word,valence}, -5..+5), including multi-word entries such as
 * {@code does not work} or {@code cover-up}, matched against text as whole words.
 *
 * <p>Words are runs of letters and digits, joined by inner apostrophes ({@code can't}, {@code whale's}); anything
 * else, hyphens included, separates words, so the entry {@code cover-up} matches "cover-up" and "cover up".
 * Matching is case-insensitive (Unicode NFC, then lower case), takes the longest entry starting at each word, and a
 * word ending in {@code 's} that is not an entry falls back to its stem ("hope's" counts as "hope").
 */
public final class SentimentLexicon {
  private static final Pattern WORD = Pattern.compile("[\\p{L}\\p{N}]+(?:'[\\p{L}\\p{N}]+)*");

  private final Map<List<String>, Double> entries;
  private final int longestEntry;

  private SentimentLexicon(Map<List<String>, Double> entries) {
    this.entries = Collections.unmodifiableMap(entries);
    this.longestEntry = entries.keySet().stream().mapToInt(List::size).max().orElse(1);
  }

  /** One word or phrase matched in a text: where it starts (in words), how many words, and its valence. */
  public record Match(int start, int length, double valence) {}

  /** The words of {@code text}, normalised for matching. */
  public static List<String> words(String text) {
    String normal = Normalizer.normalize(text, Normalizer.Form.NFC)
        .replace('\u2019', '\'').replace('\u02bc', '\'')
        .toLowerCase(Locale.ROOT);
    List<String> out = new ArrayList<>();
    Matcher m = WORD.matcher(normal);
    while (m.find()) {
      out.add(m.group());
    }
    return out;
  }

  /**
   * Parses {@code word,valence} lines (a tab also separates, as in AFINN's own files). A first line whose valence
   * is not a number is a header; blank lines are skipped; anything else malformed is an error naming the line.
   *
   * @param source the file's name for error messages
   */
  public static SentimentLexicon parse(InputStream in, String source) {
    Map<List<String>, Double> entries = new HashMap<>();
    Map<List<String>, Integer> firstLine = new HashMap<>();
    try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      String line;
      int number = 0;
      while ((line = r.readLine()) != null) {
        number++;
        if (line.isBlank()) {
          continue;
        }
        int sep = Math.max(line.lastIndexOf(','), line.lastIndexOf('\t'));
        if (sep < 0) {
          throw new IllegalArgumentException(source + " line " + number + ": expected 'word,valence', got '"
              + line + "'");
        }
        String term = line.substring(0, sep).strip();
        String value = line.substring(sep + 1).strip();
        double valence;
        try {
          valence = Double.parseDouble(value);
        } catch (NumberFormatException e) {
          if (number == 1) {
            continue;
          }
          throw new IllegalArgumentException(source + " line " + number + ": valence '" + value
              + "' of '" + term + "' is not a number");
        }
        if (!Double.isFinite(valence)) {
          throw new IllegalArgumentException(source + " line " + number + ": valence of '" + term
              + "' is not finite: " + value);
        }
        List<String> key = List.copyOf(words(term));
        if (key.isEmpty()) {
          throw new IllegalArgumentException(source + " line " + number + ": entry '" + term + "' has no words");
        }
        Integer earlier = firstLine.putIfAbsent(key, number);
        if (earlier != null) {
          throw new IllegalArgumentException(source + " line " + number + ": '" + term
              + "' is already defined on line " + earlier);
        }
        entries.put(key, valence);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read lexicon " + source + ": " + e.getMessage(), e);
    }
    if (entries.isEmpty()) {
      throw new IllegalArgumentException(source + ": the lexicon has no entries");
    }
    return new SentimentLexicon(entries);
  }

  public int size() {
    return entries.size();
  }

  /** The valence of a word or phrase as written in the lexicon, or null. */
  public Double valence(String entry) {
    return entries.get(words(entry));
  }

  /** Matches in {@code words} (as from {@link #words}), left to right, longest entry first, never overlapping. */
  public List<Match> match(List<String> words) {
    List<Match> out = new ArrayList<>();
    int i = 0;
    while (i < words.size()) {
      int matched = 0;
      for (int len = Math.min(longestEntry, words.size() - i); len >= 1 && matched == 0; len--) {
        Double v = entries.get(words.subList(i, i + len));
        if (v == null && len == 1 && words.get(i).endsWith("'s")) {
          String w = words.get(i);
          v = entries.get(List.of(w.substring(0, w.length() - 2)));
        }
        if (v != null) {
          out.add(new Match(i, len, v));
          matched = len;
        }
      }
      i += Math.max(matched, 1);
    }
    return out;
  }
}
