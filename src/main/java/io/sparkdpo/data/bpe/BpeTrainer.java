package io.sparkdpo.data.bpe;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeMap;

/**
 * Trains a GPT-2 style byte-level BPE vocabulary: texts are split by {@link Gpt2PreTokenizer}, each piece becomes a
 * sequence of byte tokens, and the most frequent adjacent pair is merged until the vocabulary (specials + 256 bytes
 * + merges) reaches the requested size or no pair occurs {@code minFrequency} times.
 *
 * <p>Pair counts are kept up to date incrementally: a merge only revisits the distinct words that contain the pair
 * (found through a pair-to-words index), so training is linear in the text rather than in text x merges. Ties
 * between equally frequent pairs go to the pair with the smaller left id, then the smaller right id; ids are assigned
 * deterministically, so the same input always gives the same vocabulary.
 */
public final class BpeTrainer {
  private final int vocabSize;
  private final List<String> specials;
  private final long minFrequency;
  /** Distinct pre-tokenized words and their counts; sorted so that everything downstream is deterministic. */
  private final Map<String, long[]> wordCounts = new TreeMap<>();

  public BpeTrainer(int vocabSize, List<String> specials, long minFrequency) {
    if (vocabSize < specials.size() + 256) {
      throw new IllegalArgumentException("vocab size " + vocabSize + " is smaller than the " + specials.size()
          + " special tokens plus 256 byte tokens");
    }
    if (new HashSet<>(specials).size() != specials.size()) {
      throw new IllegalArgumentException("duplicate special tokens: " + specials);
    }
    if (minFrequency < 1) {
      throw new IllegalArgumentException("min frequency must be at least 1 (got " + minFrequency + ")");
    }
    this.vocabSize = vocabSize;
    this.specials = List.copyOf(specials);
    this.minFrequency = minFrequency;
  }

  /** Adds one text (a document, a chapter, a response) to the training data. */
  public void add(String text) {
    for (String piece : Gpt2PreTokenizer.split(text)) {
      wordCounts.computeIfAbsent(piece, k -> new long[1])[0]++;
    }
  }

  /** Number of distinct pre-tokenized words seen so far. */
  public int distinctWords() {
    return wordCounts.size();
  }

  /** Runs the merges and returns the vocabulary. Can be called again after adding more text. */
  public BpeVocabulary train() {
    List<String> tokens = new ArrayList<>(specials);
    Map<String, Integer> ids = new HashMap<>();
    for (int i = 0; i < specials.size(); i++) {
      ids.put(specials.get(i), i);
    }
    int firstByte = tokens.size();
    for (int b = 0; b < 256; b++) {
      String t = String.valueOf(ByteLevel.charOf(b));
      // A special that happens to equal a byte character would make the vocabulary ambiguous.
      if (ids.putIfAbsent(t, tokens.size()) != null) {
        throw new IllegalArgumentException("special token " + t + " collides with a byte token");
      }
      tokens.add(t);
    }

    int n = wordCounts.size();
    int[][] words = new int[n][];
    long[] freq = new long[n];
    int w = 0;
    for (Map.Entry<String, long[]> e : wordCounts.entrySet()) {
      byte[] bytes = e.getKey().getBytes(StandardCharsets.UTF_8);
      int[] symbols = new int[bytes.length];
      for (int i = 0; i < bytes.length; i++) {
        symbols[i] = firstByte + (bytes[i] & 0xFF);
      }
      words[w] = symbols;
      freq[w] = e.getValue()[0];
      w++;
    }

    Map<Long, Long> pairCounts = new HashMap<>();
    Map<Long, Set<Integer>> wordsWithPair = new HashMap<>();
    for (w = 0; w < n; w++) {
      int[] s = words[w];
      for (int i = 0; i + 1 < s.length; i++) {
        long p = pair(s[i], s[i + 1]);
        pairCounts.merge(p, freq[w], Long::sum);
        wordsWithPair.computeIfAbsent(p, k -> new HashSet<>()).add(w);
      }
    }
    PriorityQueue<Candidate> queue = new PriorityQueue<>();
    for (Map.Entry<Long, Long> e : pairCounts.entrySet()) {
      queue.add(new Candidate(e.getKey(), e.getValue()));
    }

    List<BpeVocabulary.Merge> merges = new ArrayList<>();
    while (tokens.size() < vocabSize && !queue.isEmpty()) {
      Candidate top = queue.poll();
      long current = pairCounts.getOrDefault(top.pair, 0L);
      if (current != top.count) {
        // Stale entry: the pair lost occurrences to an earlier merge. Requeue it at its true count.
        if (current > 0) {
          queue.add(new Candidate(top.pair, current));
        }
        continue;
      }
      if (current < minFrequency) {
        break;
      }
      int left = (int) (top.pair >>> 32);
      int right = (int) top.pair;
      String merged = tokens.get(left) + tokens.get(right);
      Integer existing = ids.get(merged);
      int id;
      if (existing != null) {
        // Another merge path already produced this string; reuse its id as Hugging Face's trainer does.
        id = existing;
      } else {
        id = tokens.size();
        tokens.add(merged);
        ids.put(merged, id);
      }
      merges.add(new BpeVocabulary.Merge(tokens.get(left), tokens.get(right)));

      Map<Long, Long> delta = new HashMap<>();
      for (int word : wordsWithPair.getOrDefault(top.pair, Set.of())) {
        int[] before = words[word];
        int[] after = applyMerge(before, left, right, id);
        if (after == before) {
          continue; // the index is never pruned, so it may name words that no longer hold the pair
        }
        long f = freq[word];
        for (int i = 0; i + 1 < before.length; i++) {
          delta.merge(pair(before[i], before[i + 1]), -f, Long::sum);
        }
        for (int i = 0; i + 1 < after.length; i++) {
          long p = pair(after[i], after[i + 1]);
          delta.merge(p, f, Long::sum);
          if (after[i] == id || after[i + 1] == id) {
            wordsWithPair.computeIfAbsent(p, k -> new HashSet<>()).add(word);
          }
        }
        words[word] = after;
      }
      for (Map.Entry<Long, Long> e : delta.entrySet()) {
        long d = e.getValue();
        if (d == 0) {
          continue;
        }
        long updated = pairCounts.getOrDefault(e.getKey(), 0L) + d;
        if (updated <= 0) {
          pairCounts.remove(e.getKey());
        } else {
          pairCounts.put(e.getKey(), updated);
          if (d > 0) {
            // Only pairs that touch the new token gain occurrences; every other pair can only lose them.
            queue.add(new Candidate(e.getKey(), updated));
          }
        }
      }
      wordsWithPair.remove(top.pair);
    }
    return new BpeVocabulary(specials, tokens, merges);
  }

  /** {@code symbols} with every non-overlapping occurrence of (left, right), scanned left to right, replaced. */
  private static int[] applyMerge(int[] symbols, int left, int right, int merged) {
    int[] out = null;
    int o = 0;
    for (int i = 0; i < symbols.length; i++) {
      if (i + 1 < symbols.length && symbols[i] == left && symbols[i + 1] == right) {
        if (out == null) {
          out = new int[symbols.length - 1];
          System.arraycopy(symbols, 0, out, 0, i);
          o = i;
        }
        out[o++] = merged;
        i++;
      } else if (out != null) {
        out[o++] = symbols[i];
      }
    }
    if (out == null) {
      return symbols;
    }
    return o == out.length ? out : java.util.Arrays.copyOf(out, o);
  }

  private static long pair(int left, int right) {
    return ((long) left << 32) | (right & 0xFFFFFFFFL);
  }

  /** A queue entry: the pair's count when queued. Most frequent first, then smaller left id, then smaller right id. */
  private record Candidate(long pair, long count) implements Comparable<Candidate> {
    @Override
    public int compareTo(Candidate o) {
      if (count != o.count) {
        return Long.compare(o.count, count);
      }
      return Long.compare(pair, o.pair); // ids are non-negative, so this orders by left id, then right id
    }
  }
}
