package io.sparkdpo.data.samples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The committed sample data keeps the shape sample-data/README.md promises. */
class SampleDataTest {
  private static final Path DATA = Path.of(System.getProperty("project.basedir", "."), "sample-data");
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final String ASSISTANT = "\n\nAssistant:";

  private static List<JsonNode> jsonl(String file) throws IOException {
    List<JsonNode> rows = new ArrayList<>();
    for (String line : Files.readAllLines(DATA.resolve(file), StandardCharsets.UTF_8)) {
      rows.add(MAPPER.readTree(line));
    }
    return rows;
  }

  @Test
  void hhPairsShareTheirPromptAndDifferInTheLastReply() throws IOException {
    List<JsonNode> rows = jsonl("preferences/hh-sample.jsonl");
    assertEquals(484, rows.size());
    Set<String> distinct = new HashSet<>();
    int twoTurn = 0;
    int cjk = 0;
    int arabic = 0;
    int emoji = 0;
    for (int i = 0; i < rows.size(); i++) {
      JsonNode row = rows.get(i);
      assertEquals(Set.of("chosen", "rejected"), fieldNames(row), "row " + (i + 1));
      String chosen = row.get("chosen").textValue();
      String rejected = row.get("rejected").textValue();
      assertTrue(chosen.startsWith("\n\nHuman: ") && rejected.startsWith("\n\nHuman: "), "row " + (i + 1));
      int c = chosen.lastIndexOf(ASSISTANT);
      int r = rejected.lastIndexOf(ASSISTANT);
      assertEquals(chosen.substring(0, c), rejected.substring(0, r), "row " + (i + 1));
      String good = chosen.substring(c + ASSISTANT.length()).strip();
      String bad = rejected.substring(r + ASSISTANT.length()).strip();
      assertFalse(good.isEmpty() || bad.isEmpty(), "row " + (i + 1));
      assertNotEquals(good, bad, "row " + (i + 1));
      assertTrue(distinct.add(chosen + "\u0000" + rejected), "duplicate row " + (i + 1));
      if (chosen.indexOf("\n\nHuman: ", 1) > 0) {
        twoTurn++;
      }
      String all = chosen + rejected;
      cjk += all.codePoints().anyMatch(cp -> Character.UnicodeScript.of(cp) == Character.UnicodeScript.HAN
          || Character.UnicodeScript.of(cp) == Character.UnicodeScript.HIRAGANA
          || Character.UnicodeScript.of(cp) == Character.UnicodeScript.HANGUL) ? 1 : 0;
      arabic += all.codePoints().anyMatch(cp -> Character.UnicodeScript.of(cp) == Character.UnicodeScript.ARABIC)
          ? 1 : 0;
      emoji += all.codePoints().anyMatch(cp -> cp >= 0x1F300 && cp <= 0x1FAFF) ? 1 : 0;
    }
    assertEquals(151, twoTurn);
    assertEquals(8, cjk); // Chinese, Japanese and Korean: 4 exchanges, 2 rows each
    assertEquals(4, arabic);
    assertTrue(emoji >= 10, "rows with emoji: " + emoji);
  }

  @Test
  void trlFilesHaveTheirTwoLayouts() throws IOException {
    List<JsonNode> standard = jsonl("preferences/trl-sample.jsonl");
    assertEquals(50, standard.size());
    for (JsonNode row : standard) {
      assertEquals(Set.of("prompt", "chosen", "rejected"), fieldNames(row));
      assertTrue(row.get("prompt").isTextual() && row.get("chosen").isTextual() && row.get("rejected").isTextual());
      assertNotEquals(row.get("chosen"), row.get("rejected"));
    }
    List<JsonNode> conversational = jsonl("preferences/trl-conversational-sample.jsonl");
    assertEquals(20, conversational.size());
    int multiTurn = 0;
    for (JsonNode row : conversational) {
      JsonNode prompt = row.get("prompt");
      for (int i = 0; i < prompt.size(); i++) {
        assertEquals(i % 2 == 0 ? "user" : "assistant", prompt.get(i).get("role").textValue());
      }
      assertEquals(1, prompt.size() % 2);
      multiTurn += prompt.size() > 1 ? 1 : 0;
      for (String side : List.of("chosen", "rejected")) {
        assertEquals(1, row.get(side).size());
        assertEquals("assistant", row.get(side).get(0).get("role").textValue());
      }
    }
    assertEquals(10, multiTurn);
  }

  @Test
  void corpusIsNormalisedAndSplitByChapterNumber() throws IOException {
    Pattern chapter = Pattern.compile("chapter-(\\d{3})\\.txt");
    int heldOut = 0;
    int train = 0;
    for (String split : List.of("train", "heldout")) {
      try (Stream<Path> files = Files.list(DATA.resolve("corpus/moby-dick").resolve(split))) {
        for (Path f : files.toList()) {
          String text = new String(Files.readAllBytes(f), StandardCharsets.UTF_8);
          String name = f.getFileName().toString();
          assertEquals(Normalizer.normalize(text, Normalizer.Form.NFC), text, name);
          assertFalse(text.contains("\r") || text.contains("\n\n\n") || text.contains(" \n"), name);
          assertTrue(text.endsWith("\n") && !text.endsWith("\n\n"), name);
          Matcher m = chapter.matcher(name);
          if (m.matches()) {
            int n = Integer.parseInt(m.group(1));
            assertTrue(text.startsWith("CHAPTER " + n + ". "), name);
            assertEquals(n % 10 == 0, split.equals("heldout"), name);
          }
          if (split.equals("heldout")) {
            heldOut++;
          } else {
            train++;
          }
        }
      }
    }
    assertEquals(125, train);
    assertEquals(13, heldOut);
  }

  @Test
  void lexiconRatesEveryEntryFromMinusFiveToFive() throws IOException {
    List<String> lines = Files.readAllLines(DATA.resolve("lexicon/afinn-111.csv"), StandardCharsets.UTF_8);
    assertEquals("word,valence", lines.get(0));
    assertEquals(2477, lines.size() - 1);
    Set<String> words = new HashSet<>();
    for (String line : lines.subList(1, lines.size())) {
      int comma = line.lastIndexOf(',');
      int valence = Integer.parseInt(line.substring(comma + 1));
      assertTrue(valence >= -5 && valence <= 5, line); // one entry, "some kind", is rated 0
      assertTrue(words.add(line.substring(0, comma)), line);
    }
    assertTrue(words.contains("good") && words.contains("stupid") && words.contains("does not work"));
  }

  private static Set<String> fieldNames(JsonNode node) {
    Set<String> names = new HashSet<>();
    node.fieldNames().forEachRemaining(names::add);
    return names;
  }
}
