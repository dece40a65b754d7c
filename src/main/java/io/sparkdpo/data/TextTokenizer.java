package io.sparkdpo.data;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.TokenizersLibrary;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.sparkdpo.io.Storage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A Hugging Face tokenizer (DJL's binding of the Rust {@code tokenizers}) plus what {@code tokenizer_config.json}
 * says about special tokens and the chat template. Encoding never adds special tokens, truncates or pads: the
 * prepare stage decides all of that itself. As TRL tokenizes apply_chat_template output with
 * {@code add_special_tokens=False}, the only BOS in prepared ids is the one a template writes as {@code bos_token}
 * text, even for tokenizers whose post-processor prepends one (Llama 3's TemplateProcessing). One instance per tokenizer per JVM ({@link #of}), since executors
 * prepare many partitions with the same tokenizer.
 */
public final class TextTokenizer {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** Parsed tokenizers by fingerprint, and the instances handed out by name + fingerprint. */
  private static final Map<String, TextTokenizer> PARSED = new ConcurrentHashMap<>();
  private static final Map<String, TextTokenizer> CACHE = new ConcurrentHashMap<>();
  /** The special tokens transformers passes to chat templates (its special_tokens_map), when set. */
  private static final List<String> SPECIAL_TOKEN_KEYS = List.of("bos_token", "eos_token", "unk_token", "sep_token",
      "pad_token", "cls_token", "mask_token");

  private final TokenizerFiles files;
  private final String fingerprint;
  private final HuggingFaceTokenizer hf;
  private final Map<String, Integer> tokenIds;
  private final int vocabSize;
  private final String bosToken;
  private final String eosToken;
  private final String padToken;
  private final String chatTemplate;
  private final Map<String, String> specialTokens;

  /** The same parse under another name: the files' bytes are equal, only {@code files.spec()} differs. */
  private TextTokenizer(TextTokenizer parsed, TokenizerFiles files) {
    this.files = files;
    this.fingerprint = parsed.fingerprint;
    this.hf = parsed.hf;
    this.tokenIds = parsed.tokenIds;
    this.vocabSize = parsed.vocabSize;
    this.bosToken = parsed.bosToken;
    this.eosToken = parsed.eosToken;
    this.padToken = parsed.padToken;
    this.chatTemplate = parsed.chatTemplate;
    this.specialTokens = parsed.specialTokens;
  }

  private TextTokenizer(TokenizerFiles files) {
    this.files = files;
    this.fingerprint = files.fingerprint();
    // DJL phones home on first use unless told not to; this project never goes online at run time.
    if (System.getProperty("OPT_OUT_TRACKING") == null) {
      System.setProperty("OPT_OUT_TRACKING", "true");
    }
    JsonNode tokenizer = readJson(files.tokenizerJson(), "tokenizer.json");
    JsonNode config = files.tokenizerConfigJson() == null ? JSON.createObjectNode()
        : readJson(files.tokenizerConfigJson(), "tokenizer_config.json");
    this.tokenIds = tokenIds(tokenizer);
    this.vocabSize = tokenIds.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
    this.bosToken = tokenText(config.get("bos_token"));
    this.eosToken = tokenText(config.get("eos_token"));
    this.padToken = tokenText(config.get("pad_token"));
    Map<String, String> specials = new java.util.TreeMap<>();
    for (String key : SPECIAL_TOKEN_KEYS) {
      String text = tokenText(config.get(key));
      if (text != null) {
        specials.put(key, text);
      }
    }
    this.specialTokens = java.util.Collections.unmodifiableMap(specials);
    this.chatTemplate = files.chatTemplateJinja() != null
        ? new String(files.chatTemplateJinja(), StandardCharsets.UTF_8) : chatTemplate(config.get("chat_template"));
    Map<String, String> options = new HashMap<>();
    options.put("addSpecialTokens", "false");
    options.put("truncation", "false");
    options.put("padding", "false");
    try {
      this.hf = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(files.tokenizerJson()), options);
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException("tokenizer '" + files.spec() + "': tokenizer.json cannot be loaded: "
          + e.getMessage(), e);
    }
  }

  /** Loads by spec: {@code builtin}, a tokenizer.json path or URI, or a model folder holding one. */
  public static TextTokenizer load(String spec, Storage storage) {
    return of(TokenizerFiles.read(spec, storage));
  }

  /**
   * The JVM-wide instance for these files. The parse is shared by fingerprint; the instance is per name as well, so
   * the same bytes under another name (a model folder holding a copy of the built-in tokenizer) report their own
   * name in errors, whichever was loaded first.
   */
  public static TextTokenizer of(TokenizerFiles files) {
    String fingerprint = files.fingerprint();
    TextTokenizer parsed = PARSED.computeIfAbsent(fingerprint, f -> new TextTokenizer(files));
    return CACHE.computeIfAbsent(files.spec() + '\0' + fingerprint,
        k -> parsed.files.spec().equals(files.spec()) ? parsed : new TextTokenizer(parsed, files));
  }

  public TokenizerFiles files() {
    return files;
  }

  public String spec() {
    return files.spec();
  }

  /** Token ids of text; no special tokens are added (special-token strings in the text are still recognised). */
  public int[] encode(String text) {
    return idsOf(TokenizersLibrary.LIB.encode(hf.getHandle(), text, false));
  }

  /**
   * Encodes many texts in one native call (parallel inside the Rust library). Only the ids cross into Java:
   * DJL's {@code Encoding} also copies tokens, offsets and masks, which made tokenization 2.5 times slower.
   */
  public int[][] encodeBatch(List<String> texts) {
    if (texts.isEmpty()) {
      return new int[0][];
    }
    long[] encodings = TokenizersLibrary.LIB.batchEncode(hf.getHandle(), texts.toArray(new String[0]), false);
    int[][] out = new int[encodings.length][];
    for (int i = 0; i < encodings.length; i++) {
      out[i] = idsOf(encodings[i]);
    }
    return out;
  }

  /** The ids of a native encoding, which is then freed. */
  private static int[] idsOf(long encoding) {
    try {
      return toInts(TokenizersLibrary.LIB.getTokenIds(encoding));
    } finally {
      TokenizersLibrary.LIB.deleteEncoding(encoding);
    }
  }

  public String decode(int[] ids) {
    long[] l = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      l[i] = ids[i];
    }
    return hf.decode(l, false);
  }

  public int eosId() {
    return idOf(eosToken, "eos_token");
  }

  /** The pad token's id; the EOS id when the tokenizer defines no pad token (as most causal LMs). */
  public int padId() {
    return padToken != null ? idOf(padToken, "pad_token") : eosId();
  }

  /** The BOS token's id, or -1 if the tokenizer has none. */
  public int bosId() {
    return bosToken == null ? -1 : idOf(bosToken, "bos_token");
  }

  public boolean hasEos() {
    return eosToken != null && tokenIds.containsKey(eosToken);
  }

  public int vocabSize() {
    return vocabSize;
  }

  /** sha256 of tokenizer.json and tokenizer_config.json (and chat_template.jinja when present). */
  public String fingerprint() {
    return fingerprint;
  }

  public Optional<String> chatTemplate() {
    return Optional.ofNullable(chatTemplate);
  }

  /**
   * tokenizer_config.json's special tokens that are set, by their template variable name ({@code bos_token},
   * {@code eos_token}, {@code unk_token}, {@code sep_token}, {@code pad_token}, {@code cls_token},
   * {@code mask_token}): what transformers passes to a chat template. An unset one is undefined in the template.
   */
  public Map<String, String> specialTokens() {
    return specialTokens;
  }

  /** Special-token text ({@code bos_token}, {@code eos_token}); empty if undefined. */
  public String bosToken() {
    return bosToken == null ? "" : bosToken;
  }

  public String eosToken() {
    return eosToken == null ? "" : eosToken;
  }

  private int idOf(String token, String what) {
    Integer id = token == null ? null : tokenIds.get(token);
    if (id == null) {
      throw new IllegalStateException("tokenizer '" + files.spec() + "' defines no " + what
          + (token == null ? " (tokenizer_config.json missing or without it)" : " ('" + token + "' is not in its vocabulary)"));
    }
    return id;
  }

  private static int[] toInts(long[] ids) {
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = (int) ids[i];
    }
    return out;
  }

  private JsonNode readJson(byte[] bytes, String name) {
    try {
      return JSON.readTree(bytes);
    } catch (IOException e) {
      throw new UncheckedIOException("tokenizer '" + files.spec() + "': " + name + " is not valid JSON: "
          + e.getMessage(), e);
    }
  }

  /** Every token string with its id: the model's vocabulary plus added (special) tokens. */
  private static Map<String, Integer> tokenIds(JsonNode tokenizer) {
    Map<String, Integer> ids = new HashMap<>();
    JsonNode vocab = tokenizer.path("model").path("vocab");
    if (vocab.isObject()) {
      vocab.fields().forEachRemaining(e -> ids.put(e.getKey(), e.getValue().asInt()));
    } else if (vocab.isArray()) { // Unigram: [[piece, score], ...], id = position
      for (int i = 0; i < vocab.size(); i++) {
        ids.put(vocab.get(i).path(0).asText(), i);
      }
    }
    for (JsonNode t : tokenizer.path("added_tokens")) {
      ids.put(t.path("content").asText(), t.path("id").asInt());
    }
    return ids;
  }

  /** A special token in tokenizer_config.json: a string, or an AddedToken object with "content". */
  private static String tokenText(JsonNode v) {
    if (v == null || v.isNull()) {
      return null;
    }
    if (v.isObject()) {
      JsonNode c = v.get("content");
      return c == null || c.isNull() ? null : c.asText();
    }
    return v.asText();
  }

  /** chat_template is a string, or a list of {name, template} of which "default" is the chat template. */
  private static String chatTemplate(JsonNode v) {
    if (v == null || v.isNull()) {
      return null;
    }
    if (v.isArray()) {
      for (JsonNode t : v) {
        if ("default".equals(t.path("name").asText())) {
          return t.path("template").asText();
        }
      }
      return v.isEmpty() ? null : v.get(0).path("template").asText();
    }
    return v.asText();
  }
}
