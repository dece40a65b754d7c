package io.sparkdpo.model;

import io.sparkdpo.config.PeftSettings;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.HexFormat;

/**
 * A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) as a driver sees it before any executor
 * loads it: its settings and its fingerprint, read from the files without building tensors. The fingerprint is the
 * one {@link CausalLM#loadAdapter} gives the loaded adapter ({@link CausalLM#adapterFingerprint()}), so executors can
 * check that they loaded what the driver planned with; {@link #withBase} names base + adapter as one model.
 */
public final class AdapterFolder {
  private AdapterFolder() {}

  /** The adapter's LoRA settings, checked as {@link CausalLM#loadAdapter} checks them (errors name file and field). */
  public static PeftSettings settings(Storage storage, String folder) {
    String config = Storage.join(folder, CausalLM.ADAPTER_CONFIG);
    requireFiles(storage, folder);
    return CausalLM.parseAdapterConfig(config, storage.readBytes(config));
  }

  /** sha256 over adapter_config.json's and adapter_model.safetensors' bytes, as {@link CausalLM#loadAdapter}. */
  public static String fingerprint(Storage storage, String folder) {
    requireFiles(storage, folder);
    String text = "peft adapter " + HexFormat.of().formatHex(sha256(storage, Storage.join(folder,
        CausalLM.ADAPTER_CONFIG))) + " " + HexFormat.of().formatHex(sha256(storage, Storage.join(folder,
        CausalLM.ADAPTER_WEIGHTS)));
    return CausalLM.sha256Hex(text);
  }

  /** The fingerprint of a base model with an adapter applied (a reference stage's model, say). */
  public static String withBase(String baseFingerprint, String adapterFingerprint) {
    return CausalLM.sha256Hex("base + peft adapter\n" + baseFingerprint + "\n" + adapterFingerprint);
  }

  private static void requireFiles(Storage storage, String folder) {
    for (String f : new String[] {CausalLM.ADAPTER_CONFIG, CausalLM.ADAPTER_WEIGHTS}) {
      if (!storage.exists(Storage.join(folder, f))) {
        throw new IllegalArgumentException(Storage.join(folder, f) + ": not found (a PEFT adapter folder holds "
            + CausalLM.ADAPTER_CONFIG + " and " + CausalLM.ADAPTER_WEIGHTS + ")");
      }
    }
  }

  private static byte[] sha256(Storage storage, String path) {
    MessageDigest sha = Safetensors.sha256();
    try (InputStream in = new DigestInputStream(storage.open(path), sha)) {
      in.transferTo(OutputStream.nullOutputStream());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + path + ": " + e.getMessage(), e);
    }
    return sha.digest();
  }
}
