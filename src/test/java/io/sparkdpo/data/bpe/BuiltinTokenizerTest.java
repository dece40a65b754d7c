package io.sparkdpo.data.bpe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.cli.Main;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The committed built-in tokenizer (sample-data/tokenizer): its contract, its fidelity, and how it was made. */
class BuiltinTokenizerTest {
  private static final Path BASE = Path.of(System.getProperty("project.basedir", "."));
  private static final Path DIR = BASE.resolve("sample-data/tokenizer");
  private static HuggingFaceTokenizer djl;

  @BeforeAll
  static void load() throws IOException {
    djl = HuggingFaceTokenizer.newInstance(DIR.resolve("tokenizer.json"), TokenizerStats.DJL_OPTIONS);
  }

  @AfterAll
  static void close() {
    djl.close();
  }

  private static long[] ids(String text) {
    return djl.encode(text, false, false).getIds();
  }

  private static List<String> texts(Path... inputs) throws IOException {
    return TrainingTexts.readAll(List.of(inputs));
  }

  @Test
  void hasTheContractedVocabularyAndSpecialIds() throws IOException {
    JsonNode json = new ObjectMapper().readTree(DIR.resolve("tokenizer.json").toFile());
    assertEquals(4096, json.get("model").get("vocab").size());
    assertEquals(0, json.get("model").get("vocab").get("<|endoftext|>").intValue());
    assertEquals(1, json.get("model").get("vocab").get("<|pad|>").intValue());
    assertArrayEquals(new long[] {0}, ids("<|endoftext|>"));
    assertArrayEquals(new long[] {1}, ids("<|pad|>"));
    assertEquals("<|endoftext|>", djl.decode(new long[] {0}, false));
    assertEquals("", djl.decode(new long[] {0, 1}, true));

    JsonNode config = new ObjectMapper().readTree(DIR.resolve("tokenizer_config.json").toFile());
    assertEquals("<|endoftext|>", config.get("bos_token").textValue());
    assertEquals("<|endoftext|>", config.get("eos_token").textValue());
    assertEquals("<|pad|>", config.get("pad_token").textValue());
    assertEquals(512, config.get("model_max_length").intValue());
    assertFalse(config.has("chat_template"));
  }

  @Test
  void isPackagedOnTheClasspathUnderBuiltinTokenizer() throws IOException {
    for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
      try (InputStream in = getClass().getResourceAsStream("/io/sparkdpo/builtin/tokenizer/" + f)) {
        assertNotNull(in, f);
        assertArrayEquals(Files.readAllBytes(DIR.resolve(f)), in.readAllBytes(), f);
      }
    }
  }

  @Test
  void roundTripsArbitraryUnicodeExactly() {
    List<String> samples = new ArrayList<>(List.of(
        "", " ", "\n\nHuman: 你好，世界！\n\nAssistant: 你好！",
        "مرحبا بالعالم، كيف حالك؟", "日本語のテキスト　全角スペース", "한국어 감사합니다",
        "👩‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs, 🐋🐳", "e\u0301 combining, ﬁ ligature, Å vs A\u030A",
        "tabs\tand\r\nCRLF\u000b\u000c\u0085\u2028\u2029 end", "\u0000\u0001\u001f control", "   leading and trailing   ",
        "Ünïcödé Ελληνικά Русский עברית हिन्दी ไทย", "math ∑∫√ ≠ ≤ and symbols ©®™ €£¥"));
    Random rng = new Random(42);
    int[][] ranges = {{0x20, 0x7E}, {0xA0, 0x24F}, {0x370, 0x3FF}, {0x400, 0x4FF}, {0x590, 0x6FF},
        {0x900, 0x97F}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F300, 0x1F6FF}, {0x0, 0x1F},
        {0x2000, 0x206F}, {0x10000, 0x10FFFF}};
    for (int s = 0; s < 200; s++) {
      StringBuilder sb = new StringBuilder();
      int len = 1 + rng.nextInt(40);
      for (int i = 0; i < len; i++) {
        int[] r = ranges[rng.nextInt(ranges.length)];
        int cp = r[0] + rng.nextInt(r[1] - r[0] + 1);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
          continue; // lone surrogates are not text
        }
        sb.appendCodePoint(cp);
      }
      samples.add(sb.toString());
    }
    for (String text : samples) {
      assertEquals(text, djl.decode(ids(text), false), () -> "round trip of " + text.codePoints().boxed().toList());
    }
  }

  @Test
  void javaReferenceEncoderAgreesWithDjl() throws IOException {
    ReferenceBpeEncoder reference = new ReferenceBpeEncoder(DIR.resolve("tokenizer.json"));
    List<String> samples = new ArrayList<>(texts(BASE.resolve("sample-data/corpus/moby-dick/heldout")));
    samples.addAll(texts(BASE.resolve("sample-data/preferences/hh-sample.jsonl")).subList(0, 300));
    samples.add("odd spaces:\u3000\u00a0\u2009x \u2028y\u0085z  \t\n  end 鯨🐋 'll 've 'S 123abc ___ !!?");
    // Splits only agree here if \s means Unicode white space in both (two spaces before U+00A0 stay one token).
    samples.add("whale  \u00a0whale,   \u3000sea.\n\n\u2003Ahab");
    for (String text : samples) {
      long[] expected = Arrays.stream(reference.encode(text)).asLongStream().toArray();
      assertArrayEquals(expected, ids(text), () -> "encoding differs for: " + text.substring(0, Math.min(80,
          text.length())));
    }
  }

  @Test
  void compressesHeldOutChaptersAlmostAsWellAsTrainingText() throws IOException {
    TokenizerStats train = TokenizerStats.measure(djl, texts(BASE.resolve("sample-data/corpus/moby-dick/train")));
    TokenizerStats heldOut = TokenizerStats.measure(djl, texts(BASE.resolve("sample-data/corpus/moby-dick/heldout")));
    TokenizerStats pairs = TokenizerStats.measure(djl, texts(BASE.resolve("sample-data/preferences/hh-sample.jsonl")));
    System.out.println("train chapters: " + train + "\nheld-out chapters: " + heldOut + "\npair texts: " + pairs);
    // About 3.5 characters per token on unseen English prose; GPT-2's 50k vocabulary gets about 4.
    assertTrue(heldOut.tokensPerChar() > 0.25 && heldOut.tokensPerChar() < 0.32, heldOut.toString());
    assertTrue(heldOut.tokensPerChar() < train.tokensPerChar() * 1.05, heldOut + " vs " + train);
    assertEquals(List.of(), heldOut.roundTripFailures());
    assertEquals(List.of(), pairs.roundTripFailures());
  }

  @Test
  void isReproducedByteForByteFromTheCommittedInputs(@TempDir Path out) throws IOException {
    int code = Main.commandLine().execute("tokenizer",
        "--input", BASE.resolve("sample-data/corpus/moby-dick/train").toString(),
        BASE.resolve("sample-data/preferences/hh-sample.jsonl").toString(),
        "--vocab-size", "4096", "--output", out.toString());
    assertEquals(0, code);
    for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
      assertArrayEquals(Files.readAllBytes(DIR.resolve(f)), Files.readAllBytes(out.resolve(f)), f);
    }
  }
}
