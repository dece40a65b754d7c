package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextTokenizerTest {
  @TempDir
  Path dir;

  @Test
  void encodesEveryUtf8ByteAsOneTokenWithoutSpecialsTruncationOrPadding() {
    TextTokenizer tok = TextTokenizer.load(ByteTokenizer.write(dir.resolve("m"), null).toString(), Storage.local());
    String text = "Hi 你好 مرحبا 😀" + "x".repeat(2000);
    int[] ids = tok.encode(text);
    assertEquals(text.getBytes(StandardCharsets.UTF_8).length, ids.length);
    assertEquals('H' + 2, ids[0]);
    assertEquals(text, tok.decode(ids));
    int[][] batch = tok.encodeBatch(List.of("ab", "", text));
    assertArrayEquals(new int[] {'a' + 2, 'b' + 2}, batch[0]);
    assertEquals(0, batch[1].length);
    assertArrayEquals(ids, batch[2]);
  }

  @Test
  void readsSpecialTokensVocabSizeAndRecognisesSpecialTokenText() {
    TextTokenizer tok = TextTokenizer.load(ByteTokenizer.write(dir.resolve("m"), "{{ x }}").toString(),
        Storage.local());
    assertEquals(0, tok.eosId());
    assertEquals(1, tok.padId());
    assertEquals(0, tok.bosId());
    assertEquals(258, tok.vocabSize());
    assertEquals("{{ x }}", tok.chatTemplate().orElseThrow());
    assertArrayEquals(new int[] {'a' + 2, 0}, tok.encode("a<|endoftext|>"));
  }

  @Test
  void loadsFromATokenizerJsonPathAndCachesPerFingerprint() throws Exception {
    Path m = ByteTokenizer.write(dir.resolve("m"), null);
    TextTokenizer a = TextTokenizer.load(m.resolve("tokenizer.json").toString(), Storage.local());
    TextTokenizer b = TextTokenizer.load(m.toUri().toString(), Storage.local());
    assertSame(a, TextTokenizer.load(m.resolve("tokenizer.json").toString(), Storage.local()));
    assertEquals(a.fingerprint(), b.fingerprint());
    assertArrayEquals(a.encode("same bytes, one parse"), b.encode("same bytes, one parse"));
    assertEquals(64, a.fingerprint().length());
    Files.writeString(m.resolve("tokenizer_config.json"), "{\"eos_token\": \"<|pad|>\"}");
    TextTokenizer c = TextTokenizer.load(m.toString(), Storage.local());
    assertNotEquals(a.fingerprint(), c.fingerprint());
    assertEquals(1, c.eosId());
    assertEquals(-1, c.bosId());
  }

  @Test
  void aCopyOfTheBuiltinTokenizerUnderAnotherNameKeepsItsOwnNameWhicheverLoadedFirst() throws Exception {
    Path copy = Files.createDirectories(dir.resolve("copy"));
    for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
      try (var in = TextTokenizer.class.getResourceAsStream(TokenizerFiles.BUILTIN_RESOURCES + f)) {
        Files.write(copy.resolve(f), in.readAllBytes());
      }
    }
    TextTokenizer folder = TextTokenizer.load(copy.toString(), Storage.local());
    TextTokenizer builtin = TextTokenizer.load(TokenizerFiles.BUILTIN, Storage.local());
    assertEquals(builtin.fingerprint(), folder.fingerprint());
    assertEquals(copy.toString(), folder.spec());
    assertEquals(TokenizerFiles.BUILTIN, builtin.spec());
  }

  @Test
  void missingTokenizerIsAClearError() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TextTokenizer.load(dir.resolve("nothing").toString(), Storage.local()));
    assertTrue(e.getMessage().contains("tokenizer.json does not exist"), e.getMessage());
  }

  @Test
  void builtinTokenizerLoadsFromTheClasspathWithTheContractsSpecials() {
    TextTokenizer tok = TextTokenizer.load(TokenizerFiles.BUILTIN, Storage.local());
    assertEquals(4096, tok.vocabSize());
    assertEquals(0, tok.eosId());
    assertEquals(1, tok.padId());
    assertEquals(0, tok.bosId());
    assertTrue(tok.chatTemplate().isEmpty());
    String text = "\n\nHuman: 你好, مرحبا 😀\n\nAssistant: Hello there.";
    int[] ids = tok.encode(text);
    assertTrue(ids.length > 5 && ids.length < text.getBytes(StandardCharsets.UTF_8).length, "BPE merges bytes");
    assertEquals(text, tok.decode(ids));
    assertArrayEquals(new int[] {0}, tok.encode("<|endoftext|>"));
  }
}
