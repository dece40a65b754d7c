package io.sparkdpo.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.sparkdpo.data.TextTokenizer;
import io.sparkdpo.io.Json;
import io.sparkdpo.io.Storage;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.fs.FileStatus;

/**
 * Plain text for causal-LM training ({@code sft --text}): every non-blank line of the input files is a paragraph,
 * tokenized with the model's tokenizer and followed by EOS; the paragraphs are concatenated in file order and cut
 * into windows of {@code block_size} tokens that overlap by one, so every token after the first is a training
 * target exactly once (the remainder shorter than a window is dropped). Window k goes to shard k mod S.
 *
 * <p>Written once per run folder under {@code RUN/data/}: {@code {train,eval}/shard-NNNNN.bin} (a 16-byte header
 * {@code windows, block_size, shard, shards} then the token ids, all little-endian int32) and {@code manifest.json}
 * with the inputs' sha256. Writing again with the same inputs and settings does nothing; each rank reads only its
 * own shards.
 */
public final class TextWindows {
  public static final String TRAIN = "train";
  public static final String EVAL = "eval";
  private static final String STAGE = "text-windows";
  private static final int HEADER_BYTES = 16;

  private TextWindows() {}

  /** {@code DIR/manifest.json}. */
  public record Manifest(
      @JsonProperty("stage") String stage,
      @JsonProperty("fingerprint") String fingerprint,
      @JsonProperty("block_size") int blockSize,
      @JsonProperty("tokenizer_fingerprint") String tokenizerFingerprint,
      @JsonProperty("inputs") Map<String, List<Input>> inputs,
      @JsonProperty("splits") Map<String, Split> splits) {

    /** Absolute paths of a split's shards. */
    public List<String> shardFiles(String dir, String split) {
      Split s = splits.get(split);
      return s == null ? List.of() : s.shards().stream().map(sh -> Storage.join(dir, sh.file())).toList();
    }

    public long windows(String split) {
      Split s = splits.get(split);
      return s == null ? 0 : s.windows();
    }
  }

  public record Input(@JsonProperty("path") String path, @JsonProperty("bytes") long bytes,
                      @JsonProperty("sha256") String sha256) {}

  public record Split(@JsonProperty("windows") long windows, @JsonProperty("tokens") long tokens,
                      @JsonProperty("shards") List<Shard> shards) {}

  public record Shard(@JsonProperty("file") String file, @JsonProperty("windows") long windows) {}

  /**
   * Tokenizes {@code trainInputs} (and {@code evalInputs}, may be empty) into {@code shards} shards per split under
   * {@code dir}, unless {@code dir} already holds exactly that.
   */
  public static Manifest write(Storage storage, String dir, List<String> trainInputs, List<String> evalInputs,
      TextTokenizer tokenizer, int blockSize, int shards) {
    if (blockSize < 2 || shards < 1) {
      throw new IllegalArgumentException("need block_size >= 2 and at least one shard, got " + blockSize + ", "
          + shards);
    }
    if (!tokenizer.hasEos()) {
      throw new IllegalArgumentException("the tokenizer defines no eos_token: paragraphs of plain text need one to "
          + "end them");
    }
    Map<String, List<String>> splitInputs = new TreeMap<>();
    splitInputs.put(TRAIN, files(storage, trainInputs));
    splitInputs.put(EVAL, evalInputs.isEmpty() ? List.of() : files(storage, evalInputs));
    Map<String, List<Input>> described = new TreeMap<>();
    Map<String, List<byte[]>> contents = new TreeMap<>();
    StringBuilder fp = new StringBuilder(STAGE + " v1\nblock_size=" + blockSize + "\nshards=" + shards
        + "\ntokenizer=" + tokenizer.fingerprint() + "\n");
    for (Map.Entry<String, List<String>> e : splitInputs.entrySet()) {
      List<Input> inputs = new ArrayList<>();
      List<byte[]> bytes = new ArrayList<>();
      for (String file : e.getValue()) {
        byte[] content = storage.readBytes(file);
        bytes.add(content);
        inputs.add(new Input(file, content.length, CheckpointStore.sha256(content)));
        fp.append(e.getKey()).append(' ').append(file).append(' ').append(CheckpointStore.sha256(content)).append('\n');
      }
      described.put(e.getKey(), inputs);
      contents.put(e.getKey(), bytes);
    }
    String fingerprint = CheckpointStore.sha256(fp.toString().getBytes(StandardCharsets.UTF_8));
    String manifestPath = Storage.join(dir, "manifest.json");
    if (storage.exists(manifestPath)) {
      Manifest existing = read(storage, dir);
      if (existing.fingerprint().equals(fingerprint)) {
        return existing;
      }
    }
    Map<String, Split> splits = new TreeMap<>();
    for (Map.Entry<String, List<byte[]>> e : contents.entrySet()) {
      int[] stream = tokenize(e.getValue(), described.get(e.getKey()), tokenizer);
      splits.put(e.getKey(), writeSplit(storage, dir, e.getKey(), stream, blockSize, shards));
    }
    if (splits.get(TRAIN).windows() == 0) {
      throw new IllegalArgumentException("the text inputs " + trainInputs + " hold fewer than block_size="
          + blockSize + " tokens: nothing to train on");
    }
    Manifest m = new Manifest(STAGE, fingerprint, blockSize, tokenizer.fingerprint(), described, splits);
    storage.writeJson(manifestPath, m);
    return m;
  }

  public static Manifest read(Storage storage, String dir) {
    String path = Storage.join(dir, "manifest.json");
    try {
      Manifest m = Json.MAPPER.readValue(storage.readBytes(path), Manifest.class);
      if (!STAGE.equals(m.stage())) {
        throw new IllegalArgumentException(path + " is not a text-windows manifest (stage " + m.stage() + ")");
      }
      return m;
    } catch (IOException e) {
      throw new UncheckedIOException(path + " cannot be parsed: " + e.getMessage(), e);
    }
  }

  /** One shard's windows as training examples (all response, no prompt), ids {@code text-window-K}. */
  public static List<LmExample> readShard(Storage storage, String path) {
    ByteBuffer buf = ByteBuffer.wrap(storage.readBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
    if (buf.remaining() < HEADER_BYTES) {
      throw new IllegalArgumentException(path + " is not a text-window shard (" + buf.remaining() + " bytes)");
    }
    int windows = buf.getInt();
    int blockSize = buf.getInt();
    int shard = buf.getInt();
    int shards = buf.getInt();
    if (windows < 0 || blockSize < 2 || buf.remaining() != 4L * windows * blockSize) {
      throw new IllegalArgumentException(path + " is truncated or corrupt: header says " + windows + " windows of "
          + blockSize + " tokens, " + buf.remaining() + " bytes follow");
    }
    List<LmExample> out = new ArrayList<>(windows);
    for (int j = 0; j < windows; j++) {
      int[] ids = new int[blockSize];
      buf.asIntBuffer().get(ids);
      buf.position(buf.position() + 4 * blockSize);
      out.add(new LmExample(String.format("text-window-%d", shard + (long) j * shards), new int[0], ids));
    }
    return out;
  }

  /** The paragraphs of the files, each tokenized and ended with EOS, concatenated. */
  static int[] tokenize(List<byte[]> files, List<Input> names, TextTokenizer tokenizer) {
    List<String> paragraphs = new ArrayList<>();
    for (int f = 0; f < files.size(); f++) {
      String text = new String(files.get(f), StandardCharsets.UTF_8);
      if (text.indexOf('\uFFFD') >= 0 && !validUtf8(files.get(f))) {
        throw new IllegalArgumentException(names.get(f).path() + " is not valid UTF-8 text");
      }
      for (String line : text.split("\n")) {
        String paragraph = line.strip();
        if (!paragraph.isEmpty()) {
          paragraphs.add(paragraph);
        }
      }
    }
    int[][] encoded = tokenizer.encodeBatch(paragraphs);
    int total = 0;
    for (int[] p : encoded) {
      total += p.length + 1;
    }
    int[] stream = new int[total];
    int at = 0;
    for (int[] p : encoded) {
      System.arraycopy(p, 0, stream, at, p.length);
      at += p.length;
      stream[at++] = tokenizer.eosId();
    }
    return stream;
  }

  private static Split writeSplit(Storage storage, String dir, String split, int[] stream, int blockSize,
      int shards) {
    int stride = blockSize - 1;
    long windows = stream.length >= blockSize ? (stream.length - blockSize) / stride + 1 : 0;
    List<Shard> written = new ArrayList<>();
    for (int s = 0; s < shards; s++) {
      int mine = (int) (windows > s ? (windows - 1 - s) / shards + 1 : 0);
      ByteBuffer out = ByteBuffer.allocate(HEADER_BYTES + 4 * mine * blockSize).order(ByteOrder.LITTLE_ENDIAN);
      out.putInt(mine).putInt(blockSize).putInt(s).putInt(shards);
      for (long k = s; k < windows; k += shards) {
        out.asIntBuffer().put(stream, (int) (k * stride), blockSize);
        out.position(out.position() + 4 * blockSize);
      }
      String file = split + "/" + String.format("shard-%05d.bin", s);
      storage.writeBytes(Storage.join(dir, file), out.array());
      written.add(new Shard(file, mine));
    }
    return new Split(windows, windows * stride, written);
  }

  /** Files under the inputs (folders recursively, hidden and {@code _} files skipped), sorted, each once. */
  static List<String> files(Storage storage, List<String> inputs) {
    TreeMap<String, Boolean> found = new TreeMap<>();
    for (String input : inputs) {
      FileStatus st;
      try {
        st = storage.status(input);
      } catch (FileNotFoundException e) {
        throw new IllegalArgumentException("text input " + input + " does not exist");
      }
      if (st.isDirectory()) {
        walk(storage, st, found);
      } else {
        found.put(st.getPath().toString(), true);
      }
    }
    if (found.isEmpty()) {
      throw new IllegalArgumentException("the text inputs " + inputs + " hold no files");
    }
    return new ArrayList<>(found.keySet());
  }

  private static void walk(Storage storage, FileStatus dir, TreeMap<String, Boolean> out) {
    for (FileStatus child : storage.list(dir.getPath().toString())) {
      String name = child.getPath().getName();
      if (name.startsWith(".") || name.startsWith("_")) {
        continue;
      }
      if (child.isDirectory()) {
        walk(storage, child, out);
      } else {
        out.put(child.getPath().toString(), true);
      }
    }
  }

  private static boolean validUtf8(byte[] bytes) {
    try {
      StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes));
      return true;
    } catch (java.nio.charset.CharacterCodingException e) {
      return false;
    }
  }
}
