package io.sparkdpo.data;

import io.sparkdpo.io.Storage;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.PushbackInputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.hadoop.fs.EtagSource;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Resolves the {@code --input} paths (files or folders, any Hadoop scheme) to the data files they hold.
 * Folders are walked recursively, skipping hidden ({@code .x}) and bookkeeping ({@code _SUCCESS}) files and folders,
 * temporary files ({@code .tmp}), {@code .json} files that hold one JSON document rather than rows (a dataset's
 * {@code state.json}) and files that are not {@code .jsonl}/{@code .ndjson}/{@code .json}/{@code .parquet}
 * (optionally compressed, e.g. {@code .gz}); each skipped path is kept in {@link #skipped()} for the manifest, and
 * any but the hidden ones are logged as a warning. Any path that does not exist or cannot be read fails the job
 * here, before Spark work starts.
 */
public final class InputFiles {
  private static final Logger LOG = LoggerFactory.getLogger(InputFiles.class);
  private static final List<String> TEMPORARY_SUFFIXES = List.of(".tmp", ".temp", ".partial", ".crc", "~");

  private final Storage storage;
  private final CompressionCodecFactory codecs;
  private final List<SkippedFile> skipped = new ArrayList<>();

  public InputFiles(Storage storage) {
    this.storage = storage;
    this.codecs = new CompressionCodecFactory(storage.conf());
  }

  /** The data files, sorted by path, each listed once. */
  public List<InputFile> resolve(List<String> inputs) {
    if (inputs.isEmpty()) {
      throw new IllegalArgumentException("no --input given");
    }
    Map<String, InputFile> files = new LinkedHashMap<>();
    for (String input : inputs) {
      FileStatus st;
      try {
        st = storage.status(input);
      } catch (FileNotFoundException e) {
        throw new IllegalArgumentException("input path " + input + " does not exist");
      } catch (UncheckedIOException e) {
        throw new IllegalArgumentException("input path " + input + " cannot be read: " + e.getMessage(), e);
      }
      List<FileStatus> found = new ArrayList<>();
      if (st.isDirectory()) {
        walk(st, found);
        if (found.isEmpty()) {
          throw new IllegalArgumentException("input folder " + input + " holds no .jsonl, .json or .parquet files");
        }
      } else {
        if (layoutByName(st.getPath().getName()) == null) {
          throw new IllegalArgumentException("input file " + input + " is not .jsonl, .ndjson, .json or .parquet "
              + "(optionally compressed, e.g. .jsonl.gz)");
        }
        found.add(st);
      }
      for (FileStatus f : found) {
        String path = f.getPath().toString();
        files.computeIfAbsent(path, p -> describe(f));
      }
    }
    List<InputFile> out = new ArrayList<>(files.values());
    out.sort((a, b) -> a.path().compareTo(b.path()));
    skipped.sort((a, b) -> a.path().compareTo(b.path()));
    List<SkippedFile> worth = skipped.stream().filter(f -> !f.reason().equals(SkippedFile.HIDDEN)).toList();
    if (!worth.isEmpty()) {
      LOG.warn("prepare: skipped {} file(s) in the input folders that are not data ({} hidden ones besides), "
          + "listed in the manifest: {}", worth.size(), skipped.size() - worth.size(),
          worth.stream().limit(20).map(f -> f.path() + " (" + f.reason() + ")").toList());
    }
    return out;
  }

  /** What {@link #resolve} found in input folders and did not read, sorted by path. */
  public List<SkippedFile> skipped() {
    return List.copyOf(skipped);
  }

  private void walk(FileStatus dir, List<FileStatus> out) {
    for (FileStatus child : storage.list(dir.getPath().toString())) {
      String name = child.getPath().getName();
      String path = child.getPath().toString();
      if (name.startsWith(".") || name.startsWith("_")) {
        skipped.add(new SkippedFile(path, SkippedFile.HIDDEN));
      } else if (child.isDirectory()) {
        walk(child, out);
      } else if (TEMPORARY_SUFFIXES.stream().anyMatch(name.toLowerCase(Locale.ROOT)::endsWith)) {
        skipped.add(new SkippedFile(path, SkippedFile.TEMPORARY));
      } else if (layoutByName(name) == null) {
        skipped.add(new SkippedFile(path, SkippedFile.UNKNOWN));
      } else if (layoutByName(name).equals("json") && jsonStart(path) == JsonStart.DOCUMENT) {
        skipped.add(new SkippedFile(path, SkippedFile.METADATA));
      } else {
        out.add(child);
      }
    }
  }

  private InputFile describe(FileStatus f) {
    String path = f.getPath().toString();
    String layout = layoutByName(f.getPath().getName());
    if (layout.equals("json")) {
      layout = jsonStart(path) == JsonStart.ARRAY ? InputFile.JSON_ARRAY : InputFile.JSONL;
    }
    String etag = f instanceof EtagSource e ? e.getEtag() : null;
    return new InputFile(path, layout, f.getLen(), f.getModificationTime(), etag);
  }

  /** jsonl, json (array or lines: decided by content), parquet, or null; compression suffixes are looked through. */
  private String layoutByName(String name) {
    String n = name.toLowerCase(Locale.ROOT);
    CompressionCodec codec = codecs.getCodec(new org.apache.hadoop.fs.Path(n));
    if (codec != null) {
      n = CompressionCodecFactory.removeSuffix(n, codec.getDefaultExtension());
    }
    if (n.endsWith(".jsonl") || n.endsWith(".ndjson")) {
      return InputFile.JSONL;
    }
    if (n.endsWith(".json")) {
      return "json";
    }
    if (n.endsWith(".parquet") && codec == null) {
      return InputFile.PARQUET;
    }
    return null;
  }

  /** Opens a data file, decompressing by its suffix. */
  public InputStream open(String path) throws IOException {
    InputStream in = storage.open(path);
    CompressionCodec codec = codecs.getCodec(new org.apache.hadoop.fs.Path(path));
    return codec == null ? in : codec.createInputStream(in);
  }

  private enum JsonStart { ARRAY, LINES, DOCUMENT }

  /**
   * How a .json file starts: {@code [} (one JSON array), a line that is just {@code {} (one pretty-printed JSON
   * document such as a dataset's state.json: not rows), or anything else (read as JSON lines).
   */
  private JsonStart jsonStart(String path) {
    try (PushbackInputStream in = new PushbackInputStream(open(path), 3)) {
      int c = in.read();
      if (c == 0xEF) { // UTF-8 byte order mark
        in.read();
        in.read();
        c = in.read();
      }
      while (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        c = in.read();
      }
      if (c == '[') {
        return JsonStart.ARRAY;
      }
      if (c == '{') {
        do {
          c = in.read();
        } while (c == ' ' || c == '\t' || c == '\r');
        if (c == '\n' || c < 0) {
          return JsonStart.DOCUMENT;
        }
      }
      return JsonStart.LINES;
    } catch (IOException e) {
      throw new IllegalArgumentException("input file " + path + " cannot be read: " + e.getMessage(), e);
    }
  }
}
