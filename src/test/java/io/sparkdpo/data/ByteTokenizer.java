package io.sparkdpo.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
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
    ObjectMapper m = new ObjectMapper();
    ObjectNode root = m.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    added.add(special(m, 0, "<|endoftext|>"));
    added.add(special(m, 1, "<|pad|>"));
    root.putNull("normalizer");
    ObjectNode pre = root.putObject("pre_tokenizer");
    pre.put("type", "ByteLevel");
    pre.put("add_prefix_space", false);
    pre.put("trim_offsets", true);
    pre.put("use_regex", true);
    root.putNull("post_processor");
    ObjectNode dec = root.putObject("decoder");
    dec.put("type", "ByteLevel");
    dec.put("add_prefix_space", true);
    dec.put("trim_offsets", true);
    dec.put("use_regex", true);
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.putNull("unk_token");
    model.putNull("continuing_subword_prefix");
    model.putNull("end_of_word_suffix");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    ObjectNode vocab = model.putObject("vocab");
    vocab.put("<|endoftext|>", 0);
    vocab.put("<|pad|>", 1);
    int[] unicode = bytesToUnicode();
    for (int b = 0; b < 256; b++) {
      vocab.put(new String(Character.toChars(unicode[b])), b + 2);
    }
    model.putArray("merges");
    ObjectNode config = m.createObjectNode();
    config.put("bos_token", "<|endoftext|>");
    config.put("eos_token", "<|endoftext|>");
    config.put("pad_token", "<|pad|>");
    config.put("model_max_length", 512);
    if (chatTemplate != null) {
      config.put("chat_template", chatTemplate);
    }
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("tokenizer.json"), m.writeValueAsString(root));
      Files.writeString(dir.resolve("tokenizer_config.json"), m.writeValueAsString(config));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return dir;
  }

  private static ObjectNode special(ObjectMapper m, int id, String content) {
    ObjectNode t = m.createObjectNode();
    t.put("id", id);
    t.put("content", content);
    t.put("single_word", false);
    t.put("lstrip", false);
    t.put("rstrip", false);
    t.put("normalized", false);
    t.put("special", true);
    return t;
  }

  /** GPT-2's printable stand-ins for the 256 byte values. */
  private static int[] bytesToUnicode() {
    List<Integer> bs = new ArrayList<>();
    for (int c = '!'; c <= '~'; c++) {
      bs.add(c);
    }
    for (int c = 0xA1; c <= 0xAC; c++) {
      bs.add(c);
    }
    for (int c = 0xAE; c <= 0xFF; c++) {
      bs.add(c);
    }
    int[] map = new int[256];
    int n = 0;
    for (int b = 0; b < 256; b++) {
      map[b] = bs.contains(b) ? b : 256 + n++;
    }
    return map;
  }
}
