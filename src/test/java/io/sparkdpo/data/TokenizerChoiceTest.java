package io.sparkdpo.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerChoiceTest {
  @TempDir
  Path dir;

  @Test
  void autoPicksTheModelFoldersTokenizerElseTheBuiltinOneAndExplicitSettingsStand() throws IOException {
    Path model = ByteTokenizer.write(dir.resolve("model"), null);
    Path bare = Files.createDirectories(dir.resolve("bare"));
    Storage local = Storage.local();
    assertEquals(new TokenizerChoice(model.toString(), "auto: the tokenizer.json of model.path " + model),
        TokenizerChoice.choose("auto", model.toString(), local));
    assertEquals("builtin", TokenizerChoice.choose("auto", "builtin:tiny", local).spec());
    TokenizerChoice none = TokenizerChoice.choose("auto", bare.toString(), local);
    assertEquals("builtin", none.spec());
    assertTrue(none.reason().startsWith("auto: model.path " + bare + " has no tokenizer.json"), none.reason());
    assertEquals(new TokenizerChoice("builtin", "prepare.tokenizer=builtin"),
        TokenizerChoice.choose("builtin", model.toString(), local));
    assertEquals("/elsewhere/tokenizer.json", TokenizerChoice.choose("/elsewhere/tokenizer.json", model.toString(),
        local).spec());
  }

  @Test
  void aModelVocabularySmallerThanTheTokenizersFailsAndEqualOrLargerOrUnknownPasses() throws IOException {
    Path model = ByteTokenizer.write(dir.resolve("model"), null);
    TextTokenizer bytes = TextTokenizer.load(model.toString(), Storage.local()); // 258 ids
    TextTokenizer builtin = TextTokenizer.load("builtin", Storage.local()); // 4096 ids
    TokenizerChoice.requireFitsModel(builtin, model.toString(), Storage.local()); // no config.json: not checked
    Files.writeString(model.resolve("config.json"), "{\"text_config\": {\"vocab_size\": 258}}");
    TokenizerChoice.requireFitsModel(bytes, model.toString(), Storage.local());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TokenizerChoice.requireFitsModel(builtin, model.toString(), Storage.local()));
    assertTrue(e.getMessage().startsWith("tokenizer 'builtin' has 4096 token ids, but model " + model
        + " (config.json vocab_size 258)"), e.getMessage());
    Files.writeString(model.resolve("config.json"), "{\"vocab_size\": 151936}"); // Qwen2.5 pads its embedding
    TokenizerChoice.requireFitsModel(builtin, model.toString(), Storage.local());
    TokenizerChoice.requireFitsModel(builtin, "builtin:tiny", Storage.local());
    Files.writeString(model.resolve("config.json"), "{not json");
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
        () -> TokenizerChoice.requireFitsModel(bytes, model.toString(), Storage.local()));
    assertTrue(bad.getMessage().startsWith("model.path: " + model.resolve("config.json") + " is not valid JSON"),
        bad.getMessage());
  }
}
