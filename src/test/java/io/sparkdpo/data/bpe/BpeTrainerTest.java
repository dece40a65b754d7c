package io.sparkdpo.data.bpe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BpeTrainerTest {
  private static final List<String> SPECIALS = List.of("<|endoftext|>", "<|pad|>");

  private static String chapter(int n) throws IOException {
    Path dir = Path.of(System.getProperty("project.basedir", "."), "sample-data/corpus/moby-dick/train");
    return Files.readString(dir.resolve(String.format("chapter-%03d.txt", n)));
  }

  @Test
  void mergesTheMostFrequentPairFirst() {
    BpeTrainer trainer = new BpeTrainer(258 + 3, SPECIALS, 1);
    trainer.add("low low low low low lower lower newest newest newest");
    BpeVocabulary v = trainer.train();
    // "lo" and "ow" both occur 7 times ("Ġl" 6); the tie goes to the smaller left id: 'l' (0x6C) before 'o' (0x6F).
    assertEquals(new BpeVocabulary.Merge("l", "o"), v.merges().get(0));
    assertEquals(new BpeVocabulary.Merge("lo", "w"), v.merges().get(1));
    assertEquals(List.of("lo", "low"), v.tokens().subList(258, 260));
    assertEquals(261, v.size());
  }

  @Test
  void laysOutSpecialsThenBytesThenMerges() {
    BpeTrainer trainer = new BpeTrainer(300, SPECIALS, 2);
    trainer.add("the whale the whale the sea");
    BpeVocabulary v = trainer.train();
    assertEquals(SPECIALS, v.tokens().subList(0, 2));
    assertEquals(2, v.firstByteId());
    assertEquals("Ġ", v.tokens().get(2 + ' '));
    assertEquals("a", v.tokens().get(2 + 'a'));
    for (int i = 0; i < v.merges().size(); i++) {
      BpeVocabulary.Merge m = v.merges().get(i);
      assertEquals(m.left() + m.right(), v.tokens().get(258 + i));
    }
  }

  @Test
  void incrementalCountsGiveTheSameMergesAsRecountingEveryStep() throws IOException {
    String text = chapter(1).substring(0, 6000) + " 鯨は海に住む。 الحوت 🐋🐋 aaaa aaa aa abab ababab";
    BpeTrainer trainer = new BpeTrainer(258 + 300, SPECIALS, 2);
    trainer.add(text);
    BpeVocabulary fast = trainer.train();
    List<BpeVocabulary.Merge> naive = naiveMerges(text, 300, 2);
    assertEquals(naive, fast.merges());
    assertEquals(300, fast.merges().size());
  }

  @Test
  void stopsWhenNoPairOccursOftenEnough() {
    BpeTrainer trainer = new BpeTrainer(10_000, SPECIALS, 2);
    trainer.add("abc abc xyz");
    BpeVocabulary v = trainer.train();
    // Only a-b and b-c occur twice (tie: 'a' first), then ab-c; "Ġ abc" occurs once, below the minimum.
    assertEquals(List.of(new BpeVocabulary.Merge("a", "b"), new BpeVocabulary.Merge("ab", "c")), v.merges());
    assertEquals(260, v.size());
  }

  @Test
  void theOrderTextsArriveInDoesNotChangeTheVocabulary() throws IOException {
    List<String> texts = new ArrayList<>(List.of(chapter(2), chapter(3), chapter(4), "\n\nHuman: hi\n\nAssistant: hello"));
    BpeTrainer a = new BpeTrainer(1000, SPECIALS, 2);
    texts.forEach(a::add);
    Collections.shuffle(texts, new Random(7));
    BpeTrainer b = new BpeTrainer(1000, SPECIALS, 2);
    texts.forEach(b::add);
    assertEquals(a.train(), b.train());
  }

  @Test
  void rejectsAVocabularyTooSmallForTheBytesAndDuplicateSpecials() {
    IllegalArgumentException small = assertThrows(IllegalArgumentException.class,
        () -> new BpeTrainer(257, SPECIALS, 2));
    assertEquals("vocab size 257 is smaller than the 2 special tokens plus 256 byte tokens", small.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new BpeTrainer(300, List.of("<s>", "<s>"), 2));
    assertThrows(IllegalArgumentException.class, () -> new BpeTrainer(300, List.of("a"), 2).train());
  }

  @Test
  void trainsTheFullCorpusQuickly() throws IOException {
    BpeTrainer trainer = new BpeTrainer(4096, SPECIALS, 2);
    try (var files = Files.list(Path.of(System.getProperty("project.basedir", "."),
        "sample-data/corpus/moby-dick/train"))) {
      for (Path f : files.sorted().toList()) {
        trainer.add(Files.readString(f, StandardCharsets.UTF_8));
      }
    }
    long start = System.nanoTime();
    BpeVocabulary v = trainer.train();
    double seconds = (System.nanoTime() - start) / 1e9;
    assertEquals(4096, v.size());
    // Generous on a shared 2-core machine: the incremental trainer needs about 2 s here; recounting would take minutes.
    assertTrue(seconds < 60, "training took " + seconds + " s");
  }

  /** The textbook algorithm: recount every pair of every word after each merge. */
  private static List<BpeVocabulary.Merge> naiveMerges(String text, int merges, long minFrequency) {
    Map<List<String>, Long> words = new HashMap<>();
    for (String piece : Gpt2PreTokenizer.split(text)) {
      List<String> symbols = new ArrayList<>();
      for (char c : ByteLevel.encode(piece).toCharArray()) {
        symbols.add(String.valueOf(c));
      }
      words.merge(symbols, 1L, Long::sum);
    }
    Map<String, Integer> ids = new HashMap<>();
    for (int b = 0; b < 256; b++) {
      ids.put(String.valueOf(ByteLevel.charOf(b)), 2 + b);
    }
    List<BpeVocabulary.Merge> out = new ArrayList<>();
    while (out.size() < merges) {
      Map<List<String>, Long> pairs = new HashMap<>();
      for (Map.Entry<List<String>, Long> w : words.entrySet()) {
        List<String> s = w.getKey();
        for (int i = 0; i + 1 < s.size(); i++) {
          pairs.merge(List.of(s.get(i), s.get(i + 1)), w.getValue(), Long::sum);
        }
      }
      List<String> best = null;
      long bestCount = 0;
      for (Map.Entry<List<String>, Long> p : pairs.entrySet()) {
        long c = p.getValue();
        int cmp = best == null ? 1 : Long.compare(c, bestCount);
        if (cmp == 0) {
          int l = Integer.compare(ids.get(best.get(0)), ids.get(p.getKey().get(0)));
          cmp = l != 0 ? l : Integer.compare(ids.get(best.get(1)), ids.get(p.getKey().get(1)));
        }
        if (cmp > 0) {
          best = p.getKey();
          bestCount = c;
        }
      }
      if (best == null || bestCount < minFrequency) {
        break;
      }
      String merged = best.get(0) + best.get(1);
      ids.putIfAbsent(merged, 258 + ids.size() - 256);
      out.add(new BpeVocabulary.Merge(best.get(0), best.get(1)));
      Map<List<String>, Long> next = new HashMap<>();
      for (Map.Entry<List<String>, Long> w : words.entrySet()) {
        List<String> s = w.getKey();
        List<String> t = new ArrayList<>();
        for (int i = 0; i < s.size(); i++) {
          if (i + 1 < s.size() && s.get(i).equals(best.get(0)) && s.get(i + 1).equals(best.get(1))) {
            t.add(merged);
            i++;
          } else {
            t.add(s.get(i));
          }
        }
        next.merge(t, w.getValue(), Long::sum);
      }
      words = next;
    }
    return out;
  }
}
