package io.sparkdpo.data.bpe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HuggingFaceTokenizerFilesTest {
  private static final List<String> SPECIALS = List.of("<|endoftext|>", "<|pad|>");
  private static final HuggingFaceTokenizerFiles.Roles ROLES =
      new HuggingFaceTokenizerFiles.Roles("<|endoftext|>", "<|endoftext|>", "<|pad|>", 512);

  @TempDir
  Path dir;

  private static BpeVocabulary tiny() {
    BpeTrainer trainer = new BpeTrainer(300, SPECIALS, 1);
    trainer.add("Call me Ishmael. Some years ago, never mind how long precisely, having little money in my purse. "
        + "The whale, the whale! 鯨 鯨 🐋 🐋");
    return trainer.train();
  }

  @Test
  void writesTheLayoutHuggingFaceTokenizersSerialises() throws IOException {
    HuggingFaceTokenizerFiles.write(tiny(), ROLES, dir);
    JsonNode json = new ObjectMapper().readTree(dir.resolve("tokenizer.json").toFile());
    assertEquals(List.of("version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
        "post_processor", "decoder", "model"), fieldNames(json));
    assertEquals("1.0", json.get("version").textValue());
    JsonNode eot = json.get("added_tokens").get(0);
    assertEquals(0, eot.get("id").intValue());
    assertEquals("<|endoftext|>", eot.get("content").textValue());
    assertTrue(eot.get("special").booleanValue());
    assertFalse(eot.get("normalized").booleanValue());
    assertEquals(1, json.get("added_tokens").get(1).get("id").intValue());
    assertEquals("ByteLevel", json.get("pre_tokenizer").get("type").textValue());
    assertFalse(json.get("pre_tokenizer").get("add_prefix_space").booleanValue());
    assertTrue(json.get("pre_tokenizer").get("use_regex").booleanValue());
    assertEquals("ByteLevel", json.get("decoder").get("type").textValue());
    assertEquals("ByteLevel", json.get("post_processor").get("type").textValue());
    JsonNode model = json.get("model");
    assertEquals("BPE", model.get("type").textValue());
    assertTrue(model.get("unk_token").isNull());
    assertEquals(300, model.get("vocab").size());
    assertEquals(1, model.get("vocab").get("<|pad|>").intValue());
    assertEquals(2 + ' ', model.get("vocab").get("Ġ").intValue());
    assertEquals(300 - 258, model.get("merges").size());

    JsonNode config = new ObjectMapper().readTree(dir.resolve("tokenizer_config.json").toFile());
    assertEquals("<|endoftext|>", config.get("bos_token").textValue());
    assertEquals("<|endoftext|>", config.get("eos_token").textValue());
    assertEquals("<|pad|>", config.get("pad_token").textValue());
    assertEquals(512, config.get("model_max_length").intValue());
    assertEquals("PreTrainedTokenizerFast", config.get("tokenizer_class").textValue());
    assertEquals("<|pad|>", config.get("added_tokens_decoder").get("1").get("content").textValue());
    assertFalse(config.has("chat_template"));
    assertFalse(Files.exists(dir.resolve("tokenizer.json.tmp")));
  }

  @Test
  void djlReadsTheFileAndEncodesLikeTheJavaReference() throws IOException {
    BpeVocabulary vocab = tiny();
    HuggingFaceTokenizerFiles.write(vocab, ROLES, dir);
    ReferenceBpeEncoder reference = new ReferenceBpeEncoder(dir.resolve("tokenizer.json"));
    try (HuggingFaceTokenizer djl = HuggingFaceTokenizer.newInstance(dir.resolve("tokenizer.json"),
        TokenizerStats.DJL_OPTIONS)) {
      for (String text : List.of("Call me Ishmael.", "the whale 鯨 🐋!", "  money\n\npurse  ", "unseen ✓ text")) {
        long[] ids = djl.encode(text, false, false).getIds();
        assertArrayEquals(Arrays.stream(reference.encode(text)).asLongStream().toArray(), ids, text);
        assertEquals(text, djl.decode(ids, false));
      }
      assertArrayEquals(new long[] {0}, djl.encode("<|endoftext|>", false, false).getIds());
    }
  }

  @Test
  void writesByteIdenticalFilesForEqualVocabularies() throws IOException {
    HuggingFaceTokenizerFiles.write(tiny(), ROLES, dir.resolve("a"));
    HuggingFaceTokenizerFiles.write(tiny(), ROLES, dir.resolve("b"));
    for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
      assertArrayEquals(Files.readAllBytes(dir.resolve("a").resolve(f)), Files.readAllBytes(dir.resolve("b").resolve(f)));
    }
  }

  @Test
  void writesTwoSpaceIndentsAndAColonSpaceAsHuggingFaceDoes() throws IOException {
    HuggingFaceTokenizerFiles.write(tiny(), ROLES, dir);
    String head = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [\n"
        + "    {\n      \"id\": 0,\n";
    assertEquals(head, Files.readString(dir.resolve("tokenizer.json")).substring(0, head.length()));
  }

  @Test
  void refusesRolesThatAreNotSpecialTokens() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HuggingFaceTokenizerFiles.write(
        tiny(), new HuggingFaceTokenizerFiles.Roles("<s>", "<|endoftext|>", "<|pad|>", 512), dir));
    assertEquals("role token <s> is not one of the specials [<|endoftext|>, <|pad|>]", e.getMessage());
  }

  private static List<String> fieldNames(JsonNode node) {
    List<String> names = new java.util.ArrayList<>();
    node.fieldNames().forEachRemaining(names::add);
    return names;
  }
}
