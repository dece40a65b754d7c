package io.sparkdpo.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.hadoop.fs.FileStatus;

/**
 * A model folder in Hugging Face layout: {@code config.json}, {@code model.safetensors} or shards listed in
 * {@code model.safetensors.index.json}, and the companion files (tokenizer, generation config) that travel
 * with the weights. Paths go through {@link Storage}, so a folder may be local, on HDFS or in S3.
 *
 * <p>Folders this project writes record the sha256 of config.json and of each weight file in {@link #SHA256S}
 * (written last); a load checks the bytes it streams against it and names the file that differs. Folders
 * without it (Hugging Face downloads, older versions) load unchecked.
 */
public final class ModelFolder {
  public static final String CONFIG = "config.json";
  public static final String WEIGHTS = "model.safetensors";
  public static final String INDEX = "model.safetensors.index.json";
  public static final String GENERATION_CONFIG = "generation_config.json";
  /** Files copied verbatim from the model's origin on save, when the origin has them. */
  public static final List<String> COMPANIONS = List.of("tokenizer.json", "tokenizer_config.json",
      "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
      "chat_template.jinja", GENERATION_CONFIG);
  /** The sha256 of config.json and of every weight file, by file name, as {@link #write} wrote them. */
  public static final String SHA256S = "spark-dpo-sha256.json";
  /** transformers' default max_shard_size ("5GB"). */
  public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

  /** Receives each tensor of the folder, with the file it came from and a reader of its data. */
  @FunctionalInterface
  public interface TensorSink {
    void accept(String file, Safetensors.Entry entry, Safetensors.TensorReader data);
  }

  /** A tensor's header entry and the file that holds it. */
  public record Located(String file, Safetensors.Entry entry) {}

  /** Where a model's companion files come from: a folder, the classpath, or nowhere. */
  @FunctionalInterface
  public interface Companions {
    Optional<byte[]> read(String name);

    static Companions none() {
      return name -> Optional.empty();
    }

    static Companions folder(Storage given, String folder) {
      Storage storage = given;
      return name -> {
        String path = Storage.join(folder, name);
        return storage.exists(path) ? Optional.of(storage.readBytes(path)) : Optional.empty();
      };
    }

    static Companions classpath(String prefix) {
      return name -> {
        try (InputStream in = ModelFolder.class.getClassLoader().getResourceAsStream(prefix + name)) {
          return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
        } catch (IOException e) {
          throw new UncheckedIOException("cannot read classpath resource " + prefix + name, e);
        }
      };
    }
  }

  private ModelFolder() {}


  public static ModelConfig readConfig(Storage storage, String folder) {
    String path = Storage.join(folder, CONFIG);
    if (!storage.exists(path)) {
      throw new IllegalArgumentException(path + ": missing; a model folder needs config.json");
    }
    return ModelConfig.fromJson(storage.readString(path), path);
  }

  /**
   * The config of {@code builtin:tiny} or of a folder's config.json, parsed and checked. Drivers call this for every
   * model their executors or barrier tasks will load, before any Spark job, so an unsupported or broken config fails
   * once, in one line naming the file and the key, instead of inside every task.
   */
  public static ModelConfig configOf(Storage storage, String folderOrBuiltin) {
    if (folderOrBuiltin.equals(CausalLM.BUILTIN_TINY)) {
      return ModelConfig.tiny();
    }
    if (folderOrBuiltin.startsWith("builtin:")) {
      throw new IllegalArgumentException("unknown built-in model " + folderOrBuiltin + " (known: "
          + CausalLM.BUILTIN_TINY + ")");
    }
    return readConfig(storage, folderOrBuiltin);
  }

  /**
   * The safetensors files of a folder, in name order: the shards named by the index, or model.safetensors.
   * Returns the index's weight map too (empty for a single file) so readers can check each tensor's file.
   */
  public static Map<String, String> weightMap(Storage storage, String folder, List<String> filesOut) {
    String index = Storage.join(folder, INDEX);
    if (storage.exists(index)) {
      JsonNode root;
      try {
        root = Json.MAPPER.readTree(storage.readString(index));
      } catch (JsonProcessingException e) {
        throw new IllegalArgumentException(index + ": not valid JSON: " + e.getOriginalMessage(), e);
      }
      JsonNode map = root == null ? null : root.get("weight_map");
      if (map == null || !map.isObject() || map.isEmpty()) {
        throw new IllegalArgumentException(index + ": needs a non-empty weight_map object");
      }
      Map<String, String> weightMap = new LinkedHashMap<>();
      TreeSet<String> files = new TreeSet<>();
      map.fields().forEachRemaining(e -> {
        String file = e.getValue().asText();
        if (file.contains("/") || file.isBlank()) {
          throw new IllegalArgumentException(index + ": tensor " + e.getKey() + " maps to an invalid file name "
              + e.getValue());
        }
        weightMap.put(e.getKey(), file);
        files.add(file);
      });
      for (String f : files) {
        if (!storage.exists(Storage.join(folder, f))) {
          throw new IllegalArgumentException(index + ": shard " + f + " is missing from " + folder);
        }
      }
      filesOut.addAll(files);
      return weightMap;
    }
    if (storage.exists(Storage.join(folder, WEIGHTS))) {
      filesOut.add(WEIGHTS);
      return Map.of();
    }
    String hint = storage.exists(Storage.join(folder, "pytorch_model.bin"))
        ? " (pytorch_model.bin is not read: convert it to safetensors)" : "";
    throw new IllegalArgumentException(folder + ": no " + WEIGHTS + " and no " + INDEX + hint);
  }

  /**
   * The header entry of every tensor of the folder by name, in file order, checked as {@link #readWeights}
   * checks them (no tensor twice, each in the shard the index names, none the index lists missing). Reads
   * only the headers, so a loader can refuse a folder before it allocates or reads anything.
   */
  public static Map<String, Located> headers(Storage storage, String folder) {
    List<String> files = new ArrayList<>();
    Map<String, String> weightMap = weightMap(storage, folder, files);
    Map<String, Located> out = new LinkedHashMap<>();
    for (String f : files) {
      String path = Storage.join(folder, f);
      Safetensors.Header header;
      try (InputStream in = storage.open(path)) {
        header = Safetensors.readHeader(in, path, storage.status(path).getLen());
      } catch (IOException e) {
        throw new UncheckedIOException(path + ": cannot read: " + e.getMessage(), e);
      }
      for (Safetensors.Entry entry : header.entries()) {
        Located previous = out.put(entry.name(), new Located(path, entry));
        String previousFile = previous == null ? null
            : previous.file().substring(previous.file().lastIndexOf('/') + 1);
        checkPlacement(path, f, entry, previousFile, weightMap);
      }
    }
    checkIndexComplete(folder, weightMap, out.keySet());
    return out;
  }

  private static void checkPlacement(String path, String file, Safetensors.Entry entry, String previous,
      Map<String, String> weightMap) {
    if (previous != null) {
      throw new IllegalArgumentException(path + ": tensor " + entry.name() + " also appears in " + previous);
    }
    if (!weightMap.isEmpty() && !file.equals(weightMap.get(entry.name()))) {
      throw new IllegalArgumentException(path + ": tensor " + entry.name() + " is not mapped to this shard by "
          + INDEX + " (it says " + weightMap.get(entry.name()) + ")");
    }
  }

  private static void checkIndexComplete(String folder, Map<String, String> weightMap, java.util.Set<String> seen) {
    for (String name : weightMap.keySet()) {
      if (!seen.contains(name)) {
        throw new IllegalArgumentException(Storage.join(folder, weightMap.get(name)) + ": tensor " + name
            + " is listed in " + INDEX + " but missing from the shard");
      }
    }
  }

  /**
   * Streams every tensor of the folder into {@code sink} and returns the folder's fingerprint
   * (see {@link #fingerprint}), computed from the same bytes. Where the folder records sha256s ({@link #SHA256S}),
   * a file whose bytes differ fails naming it (after its tensors reached the sink: callers discard the model).
   */
  public static String readWeights(Storage storage, String folder, TensorSink sink) {
    Map<String, String> recorded = recordedSha256s(storage, folder);
    List<String> files = new ArrayList<>();
    Map<String, String> weightMap = weightMap(storage, folder, files);
    Map<String, String> seen = new HashMap<>();
    Map<String, byte[]> digests = new TreeMap<>();
    for (String f : files) {
      String path = Storage.join(folder, f);
      byte[] digest = Safetensors.stream(storage, path, (entry, data) -> {
        String previous = seen.put(entry.name(), f);
        checkPlacement(path, f, entry, previous, weightMap);
        sink.accept(path, entry, data);
      });
      digests.put(f, digest);
      checkRecorded(folder, f, digest, recorded);
    }
    checkIndexComplete(folder, weightMap, seen.keySet());
    byte[] config = sha256(storage, Storage.join(folder, CONFIG));
    checkRecorded(folder, CONFIG, config, recorded);
    return fingerprint(config, digests);
  }

  /** The sha256s {@link #SHA256S} records, by file name; empty when the folder has none. */
  public static Map<String, String> recordedSha256s(Storage storage, String folder) {
    String path = Storage.join(folder, SHA256S);
    if (!storage.exists(path)) {
      return Map.of();
    }
    try {
      JsonNode files = Json.MAPPER.readTree(storage.readBytes(path)).get("files");
      if (files == null || !files.isObject()) {
        throw new IllegalStateException(path + ": needs a 'files' object of sha256s");
      }
      Map<String, String> out = new TreeMap<>();
      files.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
      return out;
    } catch (IOException e) {
      throw new IllegalStateException(path + ": not valid JSON (a torn write?): " + e.getMessage(), e);
    }
  }

  private static void checkRecorded(String folder, String file, byte[] digest, Map<String, String> recorded) {
    String expected = recorded.get(file);
    String actual = HexFormat.of().formatHex(digest);
    if (expected != null && !expected.equals(actual)) {
      throw new IllegalStateException(Storage.join(folder, file) + " is corrupt: sha256 " + actual + ", "
          + SHA256S + " records " + expected);
    }
  }

  /**
   * sha256 over config.json and every safetensors file of the folder (by content, not by path or time),
   * so a copied folder keeps its fingerprint and any change to the weights or config changes it.
   */
  public static String fingerprint(Storage storage, String folder) {
    List<String> files = new ArrayList<>();
    weightMap(storage, folder, files);
    Map<String, byte[]> digests = new TreeMap<>();
    for (String f : files) {
      digests.put(f, sha256(storage, Storage.join(folder, f)));
    }
    return fingerprint(sha256(storage, Storage.join(folder, CONFIG)), digests);
  }

  private static String fingerprint(byte[] config, Map<String, byte[]> weightFiles) {
    MessageDigest sha = Safetensors.sha256();
    sha.update(config);
    weightFiles.forEach((name, digest) -> {
      sha.update(name.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      sha.update(digest);
    });
    return HexFormat.of().formatHex(sha.digest());
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

  /**
   * Writes a complete folder: config.json (torch_dtype set to what is written), the weights in one file or
   * shards of at most {@code maxShardBytes} with an index, the companion files, and a generation config.
   * Weight files from an earlier save into the same folder are removed first so no stale shard survives.
   */
  public static void write(Storage storage, String folder, ModelConfig config, List<Safetensors.Tensor> tensors,
      Safetensors.Dtype dtype, long maxShardBytes, Companions companions) {
    storage.mkdirs(folder);
    for (FileStatus st : storage.list(folder)) {
      String name = st.getPath().getName();
      if (name.equals(WEIGHTS) || name.equals(INDEX) || name.matches("model-\\d+-of-\\d+\\.safetensors")) {
        storage.delete(Storage.join(folder, name));
      }
    }
    TreeMap<String, String> sums = new TreeMap<>();
    byte[] configBytes = config.withTorchDtype(dtype.torchName).toJson().getBytes(java.nio.charset.StandardCharsets.UTF_8);
    storage.writeBytes(Storage.join(folder, CONFIG), configBytes);
    sums.put(CONFIG, HexFormat.of().formatHex(Safetensors.sha256().digest(configBytes)));
    List<List<Safetensors.Tensor>> shards = shard(tensors, dtype, maxShardBytes);
    if (shards.size() == 1) {
      sums.put(WEIGHTS, writeFile(storage, Storage.join(folder, WEIGHTS), shards.get(0), dtype));
    } else {
      ObjectNode index = JsonNodeFactory.instance.objectNode();
      long total = 0;
      ObjectNode map = JsonNodeFactory.instance.objectNode();
      for (int i = 0; i < shards.size(); i++) {
        String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
        sums.put(name, writeFile(storage, Storage.join(folder, name), shards.get(i), dtype));
        for (Safetensors.Tensor t : shards.get(i)) {
          map.put(t.name(), name);
          total += Safetensors.numel(t.shape()) * dtype.bytes;
        }
      }
      index.putObject("metadata").put("total_size", total);
      index.set("weight_map", map);
      try {
        storage.writeString(Storage.join(folder, INDEX), Json.MAPPER.writeValueAsString(index) + "\n");
      } catch (JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }
    boolean hasGenerationConfig = false;
    for (String name : COMPANIONS) {
      Optional<byte[]> bytes = companions.read(name);
      if (bytes.isPresent()) {
        storage.writeBytes(Storage.join(folder, name), bytes.get());
        hasGenerationConfig |= name.equals(GENERATION_CONFIG);
      }
    }
    if (!hasGenerationConfig) {
      storage.writeString(Storage.join(folder, GENERATION_CONFIG), generationConfig(config));
    }
    storage.writeJson(Storage.join(folder, SHA256S), Map.of("files", sums));
  }

  /** What transformers' {@code GenerationConfig.from_model_config} would derive: the special token ids. */
  static String generationConfig(ModelConfig config) {
    ObjectNode n = JsonNodeFactory.instance.objectNode();
    if (config.bosTokenId() >= 0) {
      n.put("bos_token_id", config.bosTokenId());
    }
    if (config.eosTokenIds().size() == 1) {
      n.put("eos_token_id", config.eosTokenIds().get(0));
    } else if (!config.eosTokenIds().isEmpty()) {
      var a = n.putArray("eos_token_id");
      config.eosTokenIds().forEach(a::add);
    }
    if (config.padTokenId() >= 0) {
      n.put("pad_token_id", config.padTokenId());
    }
    try {
      return Json.MAPPER.writeValueAsString(n) + "\n";
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * A shard size as transformers' {@code max_shard_size} takes it: bytes ({@code 1000000}), or a whole number with
   * {@code KB}/{@code MB}/{@code GB} (powers of 10) or {@code KiB}/{@code MiB}/{@code GiB} (powers of 2); like
   * transformers, a lower-case {@code b} ({@code 5Gb}) means bits.
   */
  public static long parseSize(String text) {
    String t = text.trim();
    String upper = t.toUpperCase(java.util.Locale.ROOT);
    long unit = 1;
    int suffix = 0;
    String[][] units = {{"GIB", "1073741824"}, {"MIB", "1048576"}, {"KIB", "1024"}, {"GB", "1000000000"},
        {"MB", "1000000"}, {"KB", "1000"}};
    for (String[] u : units) {
      if (upper.endsWith(u[0])) {
        unit = Long.parseLong(u[1]);
        suffix = u[0].length();
        break;
      }
    }
    long value;
    try {
      value = Math.multiplyExact(Long.parseLong(t.substring(0, t.length() - suffix).trim()), unit);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new IllegalArgumentException("max shard size must be bytes or a whole number with KB, MB, GB, KiB, MiB "
          + "or GiB, like \"5GB\" (got \"" + text + "\")");
    }
    if (suffix == 2 && t.endsWith("b")) {
      value /= 8;
    }
    if (value <= 0) {
      throw new IllegalArgumentException("max shard size must be positive (got \"" + text + "\")");
    }
    return value;
  }

  /** Greedy in parameter order, as transformers does; a tensor larger than the limit gets a shard of its own. */
  static List<List<Safetensors.Tensor>> shard(List<Safetensors.Tensor> tensors, Safetensors.Dtype dtype,
      long maxShardBytes) {
    if (maxShardBytes <= 0) {
      throw new IllegalArgumentException("maxShardBytes must be > 0 (got " + maxShardBytes + ")");
    }
    List<List<Safetensors.Tensor>> shards = new ArrayList<>();
    List<Safetensors.Tensor> current = new ArrayList<>();
    long bytes = 0;
    for (Safetensors.Tensor t : tensors) {
      long size = Safetensors.numel(t.shape()) * dtype.bytes;
      if (!current.isEmpty() && bytes + size > maxShardBytes) {
        shards.add(current);
        current = new ArrayList<>();
        bytes = 0;
      }
      current.add(t);
      bytes += size;
    }
    shards.add(current);
    return shards;
  }

  /** Writes one weight file and returns its sha256 (hex), computed on the way. */
  private static String writeFile(Storage storage, String path, List<Safetensors.Tensor> tensors,
      Safetensors.Dtype dtype) {
    MessageDigest sha = Safetensors.sha256();
    try (OutputStream out = new java.io.BufferedOutputStream(
        new java.security.DigestOutputStream(storage.create(path), sha), 1 << 20)) {
      Safetensors.write(out, tensors, dtype);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
    }
    return HexFormat.of().formatHex(sha.digest());
  }
}
