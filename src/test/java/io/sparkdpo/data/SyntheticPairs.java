package io.sparkdpo.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * Seeded HH-RLHF-style preference rows for tests and benchmarks: multi-turn histories, mixed scripts (Latin, CJK,
 * Arabic, emoji) and varied lengths; every pair is distinct. Optionally mixed with garbage lines of known kinds.
 */
final class SyntheticPairs {
  private static final String[] WORDS = {"the", "model", "answer", "question", "please", "explain", "why", "how",
      "data", "spark", "token", "prefer", "helpful", "harmless", "honest", "river", "mountain", "coffee", "tea",
      "你好", "世界", "学习", "مرحبا", "شكرا", "😀", "🚀", "naïve", "café", "über", "Ελλάδα"};
  private static final ObjectMapper M = new ObjectMapper();

  /** Counts of what {@link #writeMixed} wrote, to compare with the manifest. */
  record Mix(long rows, long valid, long malformed, long invalidUtf8, long duplicates, long blank) {}

  private SyntheticPairs() {}

  static String sentence(Random r, int minWords, int maxWords) {
    int n = minWords + r.nextInt(maxWords - minWords + 1);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < n; i++) {
      if (i > 0) {
        sb.append(' ');
      }
      sb.append(WORDS[r.nextInt(WORDS.length)]);
    }
    return sb.toString();
  }

  /** Row i's JSON: an HH transcript pair, unique through its index. */
  static String hhRow(Random r, long i) {
    StringBuilder prompt = new StringBuilder();
    int turns = 1 + r.nextInt(3);
    for (int t = 0; t < turns; t++) {
      prompt.append("\n\nHuman: ").append(sentence(r, 3, 25));
      if (t == 0) {
        prompt.append(" #").append(i);
      }
      if (t < turns - 1) {
        prompt.append("\n\nAssistant: ").append(sentence(r, 3, 30));
      }
    }
    prompt.append("\n\nAssistant:");
    ObjectNode row = M.createObjectNode();
    row.put("chosen", prompt + " " + sentence(r, 5, 80));
    row.put("rejected", prompt + " " + sentence(r, 2, 60) + " no");
    return row.toString();
  }

  /** n valid rows only. */
  static void writeValid(Path file, long n, long seed) {
    writeMixed(file, n, 0, seed);
  }

  /**
   * {@code valid} unique pairs plus {@code garbage} bad lines: a third malformed JSON, a third invalid UTF-8, a
   * third exact duplicates of earlier rows; and a blank line every 97 rows (blank lines are not rows).
   */
  static Mix writeMixed(Path file, long valid, long garbage, long seed) {
    Random r = new Random(seed);
    long malformed = 0;
    long invalid = 0;
    long dup = 0;
    long blank = 0;
    String firstRow = null;
    try {
      Files.createDirectories(file.toAbsolutePath().getParent());
      try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
        long v = 0;
        long g = 0;
        long line = 0;
        while (v < valid || g < garbage) {
          line++;
          if (line % 97 == 0) {
            out.write('\n');
            blank++;
            continue;
          }
          boolean bad = g < garbage && (v >= valid || r.nextInt((int) Math.max(1, (valid + garbage) / Math.max(1, garbage))) == 0);
          if (!bad) {
            String row = hhRow(r, v++);
            firstRow = firstRow == null ? row : firstRow;
            out.write(row.getBytes(StandardCharsets.UTF_8));
          } else if (g % 3 == 0) {
            out.write(("{\"chosen\": \"broken " + g + "\", ").getBytes(StandardCharsets.UTF_8));
            malformed++;
            g++;
          } else if (g % 3 == 1) {
            byte[] b = hhRow(r, valid + g).getBytes(StandardCharsets.UTF_8);
            b[b.length / 2] = (byte) 0xFF;
            out.write(b);
            invalid++;
            g++;
          } else if (firstRow != null) {
            out.write(firstRow.getBytes(StandardCharsets.UTF_8));
            dup++;
            g++;
          } else {
            line--;
            continue;
          }
          out.write('\n');
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new Mix(valid + malformed + invalid + dup, valid, malformed, invalid, dup, blank);
  }
}
