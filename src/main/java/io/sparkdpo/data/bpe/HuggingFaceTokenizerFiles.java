package io.sparkdpo.data.bpe;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes a {@link BpeVocabulary} as Hugging Face tokenizer files: {@code tokenizer.json} in the layout the
 * {@code tokenizers} library (0.21) serialises a byte-level BPE tokenizer (GPT-2's pre-tokenizer, post-processor and
 * decoder; the specials as added tokens), and a {@code tokenizer_config.json} that {@code PreTrainedTokenizerFast}
 * reads. Field order and formatting are fixed, so equal vocabularies give byte-identical files.
 */
public final class HuggingFaceTokenizerFiles {
  public static final String TOKENIZER_JSON = "tokenizer.json";
  public static final String TOKENIZER_CONFIG_JSON = "tokenizer_config.json";

  /** Which special plays which role, and the longest input the model accepts. */
  public record Roles(String bos, String eos, String pad, int modelMaxLength) {}

  private static final JsonFactory FACTORY = new JsonFactory();

  private HuggingFaceTokenizerFiles() {}

  /** Writes both files into {@code dir} (created if missing), each through a temporary file and a rename. */
  public static void write(BpeVocabulary vocab, Roles roles, Path dir) throws IOException {
    for (String role : new String[] {roles.bos(), roles.eos(), roles.pad()}) {
      if (role != null && !vocab.specials().contains(role)) {
        throw new IllegalArgumentException("role token " + role + " is not one of the specials " + vocab.specials());
      }
    }
    Files.createDirectories(dir);
    writeAtomically(dir.resolve(TOKENIZER_JSON), out -> writeTokenizerJson(vocab, out));
    writeAtomically(dir.resolve(TOKENIZER_CONFIG_JSON), out -> writeTokenizerConfig(vocab, roles, out));
  }

  public static void writeTokenizerJson(BpeVocabulary vocab, OutputStream out) throws IOException {
    try (JsonGenerator g = generator(out)) {
      g.writeStartObject();
      g.writeStringField("version", "1.0");
      g.writeNullField("truncation");
      g.writeNullField("padding");
      g.writeArrayFieldStart("added_tokens");
      for (int id = 0; id < vocab.specials().size(); id++) {
        g.writeStartObject();
        g.writeNumberField("id", id);
        g.writeStringField("content", vocab.specials().get(id));
        g.writeBooleanField("single_word", false);
        g.writeBooleanField("lstrip", false);
        g.writeBooleanField("rstrip", false);
        g.writeBooleanField("normalized", false);
        g.writeBooleanField("special", true);
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeNullField("normalizer");
      // GPT-2's settings: no prefix space when splitting; offsets trimmed of the leading space.
      byteLevel(g, "pre_tokenizer", false, true);
      byteLevel(g, "post_processor", true, false);
      byteLevel(g, "decoder", true, true);
      g.writeObjectFieldStart("model");
      g.writeStringField("type", "BPE");
      g.writeNullField("dropout");
      g.writeNullField("unk_token");
      g.writeNullField("continuing_subword_prefix");
      g.writeNullField("end_of_word_suffix");
      g.writeBooleanField("fuse_unk", false);
      g.writeBooleanField("byte_fallback", false);
      g.writeBooleanField("ignore_merges", false);
      g.writeObjectFieldStart("vocab");
      for (int id = 0; id < vocab.size(); id++) {
        g.writeNumberField(vocab.tokens().get(id), id);
      }
      g.writeEndObject();
      // "left right" strings: byte-level tokens never hold a space, and every tokenizers version reads this form.
      g.writeArrayFieldStart("merges");
      for (BpeVocabulary.Merge m : vocab.merges()) {
        g.writeString(m.left() + " " + m.right());
      }
      g.writeEndArray();
      g.writeEndObject();
      g.writeEndObject();
      g.writeRaw('\n');
    }
  }

  public static void writeTokenizerConfig(BpeVocabulary vocab, Roles roles, OutputStream out) throws IOException {
    try (JsonGenerator g = generator(out)) {
      g.writeStartObject();
      g.writeObjectFieldStart("added_tokens_decoder");
      for (int id = 0; id < vocab.specials().size(); id++) {
        g.writeObjectFieldStart(Integer.toString(id));
        g.writeStringField("content", vocab.specials().get(id));
        g.writeBooleanField("lstrip", false);
        g.writeBooleanField("normalized", false);
        g.writeBooleanField("rstrip", false);
        g.writeBooleanField("single_word", false);
        g.writeBooleanField("special", true);
        g.writeEndObject();
      }
      g.writeEndObject();
      optionalString(g, "bos_token", roles.bos());
      g.writeBooleanField("clean_up_tokenization_spaces", false);
      optionalString(g, "eos_token", roles.eos());
      g.writeNumberField("model_max_length", roles.modelMaxLength());
      optionalString(g, "pad_token", roles.pad());
      g.writeStringField("tokenizer_class", "PreTrainedTokenizerFast");
      g.writeEndObject();
      g.writeRaw('\n');
    }
  }

  private static void byteLevel(JsonGenerator g, String field, boolean addPrefixSpace, boolean trimOffsets)
      throws IOException {
    g.writeObjectFieldStart(field);
    g.writeStringField("type", "ByteLevel");
    g.writeBooleanField("add_prefix_space", addPrefixSpace);
    g.writeBooleanField("trim_offsets", trimOffsets);
    g.writeBooleanField("use_regex", true);
    g.writeEndObject();
  }

  private static void optionalString(JsonGenerator g, String field, String value) throws IOException {
    if (value == null) {
      g.writeNullField(field);
    } else {
      g.writeStringField(field, value);
    }
  }

  private static JsonGenerator generator(OutputStream out) throws IOException {
    JsonGenerator g = FACTORY.createGenerator(out, JsonEncoding.UTF8);
    g.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
    g.setPrettyPrinter(new ColonSpacePrinter());
    return g;
  }

  /**
   * Two-space indents and {@code "key": value}, as HF writes tokenizer files. Jackson 2.16's
   * {@code Separators.Spacing.AFTER} says the same, but the spark-3.5 build runs on Spark 3.5's Jackson 2.15.
   */
  private static final class ColonSpacePrinter extends DefaultPrettyPrinter {
    ColonSpacePrinter() {
      DefaultIndenter indenter = new DefaultIndenter("  ", "\n");
      indentObjectsWith(indenter);
      indentArraysWith(indenter);
    }

    private ColonSpacePrinter(ColonSpacePrinter base) {
      super(base);
    }

    @Override
    public DefaultPrettyPrinter createInstance() {
      return new ColonSpacePrinter(this);
    }

    @Override
    public void writeObjectFieldValueSeparator(JsonGenerator g) throws IOException {
      g.writeRaw(": ");
    }
  }

  private interface Body {
    void write(OutputStream out) throws IOException;
  }

  private static void writeAtomically(Path target, Body body) throws IOException {
    Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
    try (OutputStream out = Files.newOutputStream(tmp)) {
      body.write(out);
    }
    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
