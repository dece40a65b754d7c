package io.sparkdpo.data;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.io.Storage;
import java.io.BufferedReader;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.fs.FileStatus;

/**
 * Prompts for controlled generation, cut from plain text as the DPO paper cuts IMDb reviews: every paragraph (a
 * non-blank line) of at least {@code minParagraphWords} words is a candidate; candidates are ranked by a seeded hash
 * of their text (so the choice does not depend on file order, paths or machine), and the first {@code count} give
 * one prompt each, their first {@code minWords..maxWords} words (the count drawn per paragraph from the same hash),
 * cut at a word end so the text tokenizes the same way again when {@code prepare} reads it. Prompt texts are
 * unique and never one of {@code exclude} (the training prompts, when cutting held-out ones).
 */
public final class TextPrompts {
  private TextPrompts() {}

  /**
   * One prompt.
   *
   * @param index position in the cut list
   * @param source the file it was cut from; {@code line} its 1-based line
   */
  public record Prompt(
      @JsonProperty("index") int index,
      @JsonProperty("text") String text,
      @JsonProperty("ids") int[] ids,
      @JsonProperty("source") String source,
      @JsonProperty("line") long line) implements Serializable {}

  /** The rules of {@link #cut}. */
  public record Rules(int count, int minWords, int maxWords, int minParagraphWords, long seed) {
    public Rules {
      if (count < 1 || minWords < 1 || maxWords < minWords || minParagraphWords <= maxWords) {
        throw new IllegalArgumentException("prompt rules need count >= 1, 1 <= min_words <= max_words < "
            + "min_paragraph_words (got " + count + ", " + minWords + ", " + maxWords + ", " + minParagraphWords + ")");
      }
    }
  }

  /** The text files under {@code inputs} (files, or folders walked recursively; hidden and {@code _} files skipped). */
  public static List<FileStatus> files(Storage storage, List<String> inputs) {
    if (inputs.isEmpty()) {
      throw new IllegalArgumentException("no prompt text given");
    }
    Map<String, FileStatus> files = new LinkedHashMap<>();
    for (String input : inputs) {
      FileStatus st;
      try {
        st = storage.status(input);
      } catch (FileNotFoundException e) {
        throw new IllegalArgumentException("prompt text " + input + " does not exist");
      }
      List<FileStatus> found = new ArrayList<>();
      walk(storage, st, found);
      if (found.isEmpty()) {
        throw new IllegalArgumentException("prompt folder " + input + " holds no files");
      }
      found.forEach(f -> files.putIfAbsent(f.getPath().toString(), f));
    }
    List<FileStatus> out = new ArrayList<>(files.values());
    out.sort(Comparator.comparing(f -> f.getPath().toString()));
    return out;
  }

  private static void walk(Storage storage, FileStatus st, List<FileStatus> out) {
    String name = st.getPath().getName();
    if (name.startsWith(".") || name.startsWith("_")) {
      return;
    }
    if (!st.isDirectory()) {
      out.add(st);
      return;
    }
    for (FileStatus child : storage.list(st.getPath().toString())) {
      walk(storage, child, out);
    }
  }

  /** Cuts prompts from the text files; fewer than {@code rules.count()} when the text has fewer usable paragraphs. */
  public static List<Prompt> cut(Storage storage, List<FileStatus> files, TextTokenizer tokenizer, Rules rules,
      Set<String> exclude) {
    record Candidate(long rank, String prompt, String source, long line) {}
    List<Candidate> candidates = new ArrayList<>();
    for (FileStatus f : files) {
      String path = f.getPath().toString();
      try (BufferedReader in = new BufferedReader(new InputStreamReader(storage.open(path), StandardCharsets.UTF_8))) {
        long line = 0;
        for (String text = in.readLine(); text != null; text = in.readLine()) {
          line++;
          String paragraph = text.strip();
          String[] words = paragraph.isEmpty() ? new String[0] : paragraph.split("\\s+");
          if (words.length < rules.minParagraphWords()) {
            continue;
          }
          long h = hash(rules.seed(), paragraph);
          int take = rules.minWords() + (int) Math.floorMod(h >>> 20, rules.maxWords() - rules.minWords() + 1);
          candidates.add(new Candidate(h, prefix(paragraph, take), path, line));
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read prompt text " + path + ": " + e.getMessage(), e);
      }
    }
    candidates.sort(Comparator.comparingLong(Candidate::rank).thenComparing(Candidate::prompt));
    Set<String> seen = new HashSet<>(exclude);
    List<Candidate> chosen = new ArrayList<>();
    for (Candidate c : candidates) {
      if (chosen.size() == rules.count()) {
        break;
      }
      if (seen.add(c.prompt())) {
        chosen.add(c);
      }
    }
    int[][] ids = tokenizer.encodeBatch(chosen.stream().map(Candidate::prompt).toList());
    List<Prompt> out = new ArrayList<>();
    for (int i = 0; i < chosen.size(); i++) {
      Candidate c = chosen.get(i);
      out.add(new Prompt(i, c.prompt(), ids[i], c.source(), c.line()));
    }
    return out;
  }

  /** The paragraph up to the end of its {@code words}-th word, original spacing kept. */
  static String prefix(String paragraph, int words) {
    int seen = 0;
    int i = 0;
    int n = paragraph.length();
    while (i < n) {
      while (i < n && Character.isWhitespace(paragraph.charAt(i))) {
        i++;
      }
      while (i < n && !Character.isWhitespace(paragraph.charAt(i))) {
        i++;
      }
      if (++seen == words) {
        return paragraph.substring(0, i);
      }
    }
    return paragraph;
  }

  /** A 64-bit hash of (seed, text), the same on every machine. */
  static long hash(long seed, String text) {
    MessageDigest md = PreferencePair.sha256();
    md.update(ByteBuffer.allocate(8).putLong(seed).array());
    md.update(text.getBytes(StandardCharsets.UTF_8));
    return ByteBuffer.wrap(md.digest()).getLong();
  }
}
