package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Chat templates in the style of Llama 3.x, Qwen2.5, Mistral v0.3 and v0.1, Zephyr, SmolLM2 and Gemma, plus one of
 * Jinja constructs and one of whitespace rules, rendered over a set of conversations: the strings must be
 * byte-identical to what Jinja2 renders in transformers' environment (tools/golden/chat_templates.py wrote
 * golden.json with Debian's python3-jinja2), and a conversation Jinja2 refuses must raise the same message. Then the
 * token ids: prepare's ids of a rendering equal the ids of the golden string, and start with exactly one BOS where
 * the template writes it, although the fixture tokenizers' post-processors add a BOS (as Llama 3's does).
 */
class ChatTemplateGoldenTest {
  private static final String DIR = "/io/sparkdpo/data/chat-templates/";
  /** Added to the built-in tokenizer, in this order from id 4096: every family's special tokens. */
  private static final List<String> ADDED = List.of("<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>",
      "<|end_header_id|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<bos>",
      "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>", "<|user|>", "<|assistant|>", "<|system|>");

  private static JsonNode golden;
  private static Clock clock;

  @TempDir
  static Path tmp;

  @BeforeAll
  static void readGolden() throws IOException {
    try (InputStream in = ChatTemplateGoldenTest.class.getResourceAsStream(DIR + "golden.json")) {
      golden = new ObjectMapper().readTree(in);
    }
    clock = Clock.fixed(LocalDateTime.parse(golden.get("now").asText()).toInstant(ZoneOffset.UTC), ZoneOffset.UTC);
  }

  @Test
  void everyFixtureRendersByteIdenticalToJinja2InTransformersEnvironment() throws IOException {
    List<String> failures = new ArrayList<>();
    int cases = 0;
    for (JsonNode c : golden.get("cases")) {
      cases++;
      String want = c.has("rendered") ? c.get("rendered").asText()
          : "chat template failed: raise_exception('" + c.get("error").asText() + "')";
      String got;
      try {
        got = template(c.get("template").asText()).render(conversation(c), c.get("add_generation_prompt").asBoolean());
      } catch (BadRow e) {
        got = e.detail();
      }
      if (!want.equals(got)) {
        failures.add(describe(c, want, got));
      }
    }
    assertEquals(180, cases, "golden.json is incomplete");
    if (!failures.isEmpty()) {
      fail(failures.size() + " of " + cases + " renderings differ from Jinja2:\n" + String.join("\n", failures));
    }
  }

  @Test
  void preparedIdsOfARenderingEqualTheGoldenStringsIdsWithExactlyOneBos() throws IOException {
    Map<String, Integer> firstIds = new TreeMap<>();
    int checked = 0;
    for (JsonNode c : golden.get("cases")) {
      if (!c.has("rendered")) {
        continue;
      }
      String family = c.get("template").asText();
      TextTokenizer tok = tokenizer(family);
      String rendered = template(family).renderOrThrow(conversation(c), c.get("add_generation_prompt").asBoolean());
      int[] ids = tok.encode(rendered);
      assertArrayEquals(tok.encode(c.get("rendered").asText()), ids, family + " / " + c.get("conversation").asText());
      String bos = golden.get("special_tokens").get(family).path("bos_token").asText(null);
      if (bos != null && rendered.startsWith(bos)) {
        assertEquals(tok.bosId(), ids[0], family);
        assertTrue(ids[1] != tok.bosId(), family + ": the BOS is doubled");
      }
      firstIds.putIfAbsent(family, ids.length > 1 ? ids[0] * 10_000 + ids[1] : -1);
      checked++;
    }
    assertEquals(156, checked);
    // <|begin_of_text|><|start_header_id|>, <s>[INST], <bos><start_of_turn>, <|im_start|> ('system' follows)
    assertEquals(4096 * 10_000 + 4098, firstIds.get("llama3"));
    assertEquals(4102 * 10_000 + 4105, firstIds.get("mistral-v0.3"));
    assertEquals(4102 * 10_000 + 4105, firstIds.get("mistral-v0.1"));
    assertEquals(4107 * 10_000 + 4110, firstIds.get("gemma"));
    assertEquals(4100, firstIds.get("qwen2.5") / 10_000);
    assertEquals(4100, firstIds.get("smollm2") / 10_000);
    assertEquals(4112, firstIds.get("zephyr") / 10_000); // <|user|>; Zephyr writes no BOS
  }

  @Test
  void theFixtureTokenizersPostProcessorWouldDoubleTheBosThatTemplatesWrite() throws IOException {
    Path dir = tokenizerDir("llama3");
    String text = "<|begin_of_text|>Hi";
    try (HuggingFaceTokenizer hf = HuggingFaceTokenizer.newInstance(dir.resolve("tokenizer.json"), Map.of())) {
      long[] withSpecials = hf.encode(text, true, false).getIds();
      assertEquals(4096, withSpecials[0]);
      assertEquals(4096, withSpecials[1]); // what add_special_tokens=True would give: two BOS
    }
    int[] ids = tokenizer("llama3").encode(text);
    assertEquals(4096, ids[0]);
    assertTrue(ids[1] != 4096);
    assertEquals("Hi", tokenizer("llama3").decode(Arrays.copyOfRange(ids, 1, ids.length)));
  }

  private static String describe(JsonNode c, String want, String got) {
    int i = 0;
    while (i < Math.min(want.length(), got.length()) && want.charAt(i) == got.charAt(i)) {
      i++;
    }
    return String.format("  %s / %s / add_generation_prompt=%s: first difference at char %d%n    jinja2: %s%n    java:   %s",
        c.get("template").asText(), c.get("conversation").asText(), c.get("add_generation_prompt").asText(), i,
        excerpt(want, i), excerpt(got, i));
  }

  private static String excerpt(String s, int at) {
    return "..." + s.substring(Math.max(0, at - 30), Math.min(s.length(), at + 50)).replace("\n", "\\n")
        .replace("\t", "\\t") + "...";
  }

  private static List<Turn> conversation(JsonNode c) {
    List<Turn> turns = new ArrayList<>();
    for (JsonNode m : golden.get("conversations").get(c.get("conversation").asText())) {
      turns.add(new Turn(m.get("role").asText(), m.get("content").asText()));
    }
    return turns;
  }

  private static Map<String, String> specials(String family) {
    Map<String, String> specials = new TreeMap<>();
    golden.get("special_tokens").get(family).fields().forEachRemaining(e -> specials.put(e.getKey(), e.getValue().asText()));
    return specials;
  }

  private static GoldenTemplate template(String family) throws IOException {
    try (InputStream in = ChatTemplateGoldenTest.class.getResourceAsStream(DIR + family + ".jinja")) {
      String source = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      return new GoldenTemplate(new JinjaChatTemplate(family, source, specials(family), clock));
    }
  }

  private record GoldenTemplate(JinjaChatTemplate t) {
    String render(List<Turn> turns, boolean addGenerationPrompt) throws BadRow {
      return t.render(turns, addGenerationPrompt);
    }

    String renderOrThrow(List<Turn> turns, boolean addGenerationPrompt) {
      try {
        return t.render(turns, addGenerationPrompt);
      } catch (BadRow e) {
        throw new AssertionError(e.detail(), e);
      }
    }
  }

  private static TextTokenizer tokenizer(String family) throws IOException {
    return TextTokenizer.load(tokenizerDir(family).toString(), Storage.local());
  }

  /**
   * The built-in tokenizer plus {@link #ADDED} as special added tokens, the family's tokenizer_config.json special
   * tokens, and, when the family has a BOS, a Llama-3-style post-processor that prepends it.
   */
  private static Path tokenizerDir(String family) throws IOException {
    Path dir = tmp.resolve(family);
    if (Files.isRegularFile(dir.resolve("tokenizer.json"))) {
      return dir;
    }
    Files.createDirectories(dir);
    ObjectMapper json = new ObjectMapper();
    ObjectNode tokenizer;
    try (InputStream in = ChatTemplateGoldenTest.class.getResourceAsStream("/io/sparkdpo/builtin/tokenizer/tokenizer.json")) {
      tokenizer = (ObjectNode) json.readTree(in);
    }
    ArrayNode added = (ArrayNode) tokenizer.get("added_tokens");
    for (int i = 0; i < ADDED.size(); i++) {
      added.addObject().put("id", 4096 + i).put("content", ADDED.get(i)).put("single_word", false)
          .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
    }
    Map<String, String> specials = specials(family);
    String bos = specials.get("bos_token");
    if (bos != null) {
      int bosId = 4096 + ADDED.indexOf(bos);
      ObjectNode template = json.createObjectNode().put("type", "TemplateProcessing");
      template.putArray("single").addObject().putObject("SpecialToken").put("id", bos).put("type_id", 0);
      ((ArrayNode) template.get("single")).addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
      template.putArray("pair").addAll((ArrayNode) template.get("single").deepCopy());
      ((ArrayNode) template.get("pair")).addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
      ObjectNode special = template.putObject("special_tokens").putObject(bos).put("id", bos);
      special.putArray("ids").add(bosId);
      special.putArray("tokens").add(bos);
      ObjectNode sequence = json.createObjectNode().put("type", "Sequence");
      sequence.putArray("processors").add(tokenizer.get("post_processor")).add(template);
      tokenizer.set("post_processor", sequence);
    }
    json.writeValue(dir.resolve("tokenizer.json").toFile(), tokenizer);
    ObjectNode config = json.createObjectNode();
    specials.forEach(config::put);
    json.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
    return dir;
  }
}
