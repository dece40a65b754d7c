package io.sparkdpo.data;

import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import io.sparkdpo.io.Storage;

/**
 * The bytes of a Hugging Face tokenizer: {@code tokenizer.json}, and when present {@code tokenizer_config.json}
 * and {@code chat_template.jinja}. Read once on the driver and shipped to executors, so executors need no access
 * to where the tokenizer lives.
 *
 * @param spec what the user configured: {@code builtin}, a tokenizer.json path, or a model folder
 */
public record TokenizerFiles(String spec, byte[] tokenizerJson, byte[] tokenizerConfigJson, byte[] chatTemplateJinja)
    implements Serializable {
  public static final String BUILTIN = "builtin";
  static final String BUILTIN_RESOURCES = "/io/sparkdpo/builtin/tokenizer/";

  /** Reads the files a spec names. Fails with a message naming what was looked for. */
  public static TokenizerFiles read(String spec, Storage storage) {
    if (BUILTIN.equals(spec)) {
      byte[] json = resource("tokenizer.json");
      if (json == null) {
        throw new IllegalStateException("the built-in tokenizer is missing from the classpath ("
            + BUILTIN_RESOURCES + "tokenizer.json); build with sample-data/tokenizer present");
      }
      return new TokenizerFiles(spec, json, resource("tokenizer_config.json"), null);
    }
    String file;
    String dir;
    if (spec.endsWith(".json")) {
      file = spec;
      int slash = spec.lastIndexOf('/');
      dir = slash < 0 ? "." : spec.substring(0, slash);
    } else {
      dir = spec;
      file = Storage.join(spec, "tokenizer.json");
    }
    if (!storage.exists(file)) {
      throw new IllegalArgumentException("tokenizer '" + spec + "': " + file + " does not exist (give builtin, "
          + "a tokenizer.json file, or a model folder holding tokenizer.json)");
    }
    return new TokenizerFiles(spec, storage.readBytes(file), optional(storage, Storage.join(dir, "tokenizer_config.json")),
        optional(storage, Storage.join(dir, "chat_template.jinja")));
  }

  /** sha256 over the files' bytes (length-prefixed; absent files count as empty and are marked). */
  public String fingerprint() {
    MessageDigest md = PreferencePair.sha256();
    for (byte[] part : new byte[][] {tokenizerJson, tokenizerConfigJson, chatTemplateJinja}) {
      if (part == null) {
        md.update((byte) 0);
      } else {
        md.update((byte) 1);
        md.update(Long.toString(part.length).getBytes(StandardCharsets.US_ASCII));
        md.update((byte) ':');
        md.update(part);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  private static byte[] optional(Storage storage, String path) {
    return storage.exists(path) ? storage.readBytes(path) : null;
  }

  private static byte[] resource(String name) {
    try (InputStream in = TokenizerFiles.class.getResourceAsStream(BUILTIN_RESOURCES + name)) {
      return in == null ? null : in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
