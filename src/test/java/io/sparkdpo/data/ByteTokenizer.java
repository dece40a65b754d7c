package io.sparkdpo.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.data.bpe.BpeVocabulary;
import io.sparkdpo.data.bpe.ByteLevel;
import io.sparkdpo.data.bpe.HuggingFaceTokenizerFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A tiny Hugging Face byte-level BPE tokenizer without merges, written by tests: every UTF-8 byte is one token
 * (id = byte + 2), {@code <|endoftext|>} = 0 (BOS/EOS) and {@code <|pad|>} = 1, as the built-in tokenizer's
 * specials. Token counts equal UTF-8 byte counts, so tests can state exact lengths.
 */
final class ByteTokenizer {
  static final int EOS = 0;
  static final int PAD = 1;

  private ByteTokenizer() {}

  /** Writes tokenizer.json and tokenizer_config.json (with an optional chat_template) into dir; returns dir. */
  static Path write(Path dir, String chatTemplate) {
    List<String> specials = List.of("<|endoftext|>", "<|pad|>");
    List<String> tokens = new ArrayList<>(specials);
    for (int b = 0; b < 256; b++) {
      tokens.add(String.valueOf(ByteLevel.charOf(b)));
    }
    try {
      HuggingFaceTokenizerFiles.write(new BpeVocabulary(specials, tokens, List.of()),
          new HuggingFaceTokenizerFiles.Roles("<|endoftext|>", "<|endoftext|>", "<|pad|>", 512), dir);
      if (chatTemplate != null) {
        ObjectMapper m = new ObjectMapper();
        Path config = dir.resolve(HuggingFaceTokenizerFiles.TOKENIZER_CONFIG_JSON);
        ObjectNode tree = (ObjectNode) m.readTree(config.toFile());
        tree.put("chat_template", chatTemplate);
        m.writeValue(config.toFile(), tree);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return dir;
  }
}
