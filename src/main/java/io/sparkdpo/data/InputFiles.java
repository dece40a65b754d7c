package io.sparkdpo.data;

import com.fasterxml.jackson.databind.JsonNode;
import io.sparkdpo.io.Json;
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
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.hadoop.fs.EtagSource;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Resolves the {@code --input} paths (files or folders, any Hadoop scheme) to the data files they hold.
 * Folders are walked recursively, skipping hidden ({@code .x}) and bookkeeping ({@code _SUCCESS}) files and folders,
 * temporary files ({@code .tmp}), {@code .json} files that hold one JSON document rather than rows and files that are
 * not {@code .jsonl}/{@code .ndjson}/{@code .json}/{@code .parquet} (optionally compressed, e.g. {@code .gz}) or
 * {@code .arrow} (Arrow IPC streams); each skipped path is kept in {@link #skipped()} for the manifest, and any but the
 * hidden ones are logged as a warning. Any path that does not exist or cannot be read fails the job here, before
 * Spark work starts.
 *
 * <p>Hugging Face dataset folders are read as {@code datasets} reads them, without renaming files, one split only
 * (prepare.dataset_split, default {@code train}; other splits are skipped as {@link SkippedFile#OTHER_SPLIT}):
 * <ul>
 *   <li>{@code Dataset.save_to_disk}: {@code state.json} lists the {@code data-0000i-of-0000n.arrow} files, in order;
 *   <li>{@code DatasetDict.save_to_disk}: {@code dataset_dict.json} names the splits, one such folder each;
 *   <li>hub repositories: shards named {@code data/SPLIT-0000i-of-0000n.*} (datasets' SPLIT_PATTERN_SHARDED,
 *   e.g. {@code data/train-00000-of-00002.parquet}) under the input folder.
 * </ul>
 */
public final class InputFiles {
  private static final Logger LOG = LoggerFactory.getLogger(InputFiles.class);
  private static final List<String> TEMPORARY_SUFFIXES = List.of(".tmp", ".temp", ".partial", ".crc", "~");
  /** datasets' config.DATASET_STATE_JSON_FILENAME, DATASET_INFO_FILENAME, DATASETDICT_JSON_FILENAME. */
  static final String STATE_JSON = "state.json";
  static final String DATASET_INFO_JSON = "dataset_info.json";
  static final String DATASET_DICT_JSON = "dataset_dict.json";
  /** datasets' SPLIT_PATTERN_SHARDED, {@code data/{split}-[0-9]{5}-of-[0-9]{5}*.*}, relative to the input folder. */
  private static final Pattern SHARDED = Pattern.compile("data/([^/]+?)-[0-9]{5}-of-[0-9]{5}[^/]*\\.[^/]+");

  private final Storage storage;
  private final String datasetSplit;
  private final CompressionCodecFactory codecs;
  private final List<SkippedFile> skipped = new ArrayList<>();

  /** For opening files only (executors): folders would be resolved with the default split, train. */
  public InputFiles(Storage storage) {
    this(storage, "train");
  }

  /** @param datasetSplit the split to read from Hugging Face dataset folders (prepare.dataset_split) */
  public InputFiles(Storage storage, String datasetSplit) {
    this.storage = storage;
    this.datasetSplit = datasetSplit;
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
        found = hubSplit(input, st.getPath().toString(), found);
        if (found.isEmpty()) {
          throw new IllegalArgumentException("input folder " + input + " holds no .jsonl, .json, .parquet or .arrow "
              + "files");
        }
      } else {
        if (layoutByName(st.getPath().getName()) == null) {
          throw new IllegalArgumentException("input file " + input + " is not .jsonl, .ndjson, .json, .parquet or "
              + ".arrow (optionally compressed, e.g. .jsonl.gz)");
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
    List<FileStatus> children = storage.list(dir.getPath().toString());
    Map<String, FileStatus> byName = new TreeMap<>();
    children.forEach(c -> byName.put(c.getPath().getName(), c));
    FileStatus dict = byName.get(DATASET_DICT_JSON);
    FileStatus state = byName.get(STATE_JSON);
    if (dict != null && !dict.isDirectory()) {
      datasetDict(dir, dict, children, out);
    } else if (state != null && !state.isDirectory() && savedDatasetFiles(state, byName) != null) {
      savedDataset(dir, state, children, out);
    } else {
      for (FileStatus child : children) {
        visit(child, out);
      }
    }
  }

  private void visit(FileStatus child, List<FileStatus> out) {
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

  /** A DatasetDict folder: only the chosen split's folder is read, as {@code load_from_disk(path)[split]} would. */
  private void datasetDict(FileStatus dir, FileStatus dictFile, List<FileStatus> children, List<FileStatus> out) {
    String dictPath = dictFile.getPath().toString();
    JsonNode splits = readJson(dictPath).path("splits");
    if (!splits.isArray()) {
      throw new IllegalArgumentException("Hugging Face dataset file " + dictPath + " has no 'splits' list");
    }
    List<String> names = new ArrayList<>();
    splits.forEach(n -> names.add(n.asText()));
    if (!names.contains(datasetSplit)) {
      throw new IllegalArgumentException("input folder " + dir.getPath() + " is a Hugging Face DatasetDict with "
          + "splits " + names + " (" + DATASET_DICT_JSON + "), none named '" + datasetSplit + "'; set "
          + "prepare.dataset_split to the split to read");
    }
    skipped.add(new SkippedFile(dictPath, SkippedFile.METADATA));
    boolean found = false;
    for (FileStatus child : children) {
      String name = child.getPath().getName();
      if (child.isDirectory() && name.equals(datasetSplit)) {
        walk(child, out);
        found = true;
      } else if (names.contains(name)) {
        skipped.add(new SkippedFile(child.getPath().toString(), SkippedFile.OTHER_SPLIT));
      } else if (!name.equals(DATASET_DICT_JSON)) {
        skipped.add(new SkippedFile(child.getPath().toString(),
            name.startsWith(".") || name.startsWith("_") ? SkippedFile.HIDDEN : SkippedFile.UNKNOWN));
      }
    }
    if (!found) {
      throw new IllegalArgumentException("Hugging Face DatasetDict " + dir.getPath() + " lists split '"
          + datasetSplit + "' in " + DATASET_DICT_JSON + " but has no folder " + datasetSplit + "/");
    }
  }

  /**
   * The Arrow files of a {@code save_to_disk} Dataset folder, or null when its state.json is not a datasets state
   * or lists a file the folder lacks (then the folder is read as any other, and state.json skipped as metadata).
   */
  private List<String> savedDatasetFiles(FileStatus state, Map<String, FileStatus> byName) {
    List<String> files = dataFiles(state);
    if (files == null) {
      return null;
    }
    for (String file : files) {
      FileStatus f = byName.get(file);
      if (f == null || f.isDirectory()) {
        LOG.warn("prepare: {} lists {}, which is missing: not a Hugging Face dataset folder, read as files",
            state.getPath(), file);
        return null;
      }
    }
    return files;
  }

  /** A {@code save_to_disk} Dataset folder: exactly the Arrow files state.json lists, in its order. */
  private void savedDataset(FileStatus dir, FileStatus state, List<FileStatus> children, List<FileStatus> out) {
    List<String> files = dataFiles(state);
    Map<String, FileStatus> byName = new TreeMap<>();
    children.forEach(c -> byName.put(c.getPath().getName(), c));
    for (String file : files) {
      out.add(byName.get(file));
    }
    for (FileStatus child : children) {
      String name = child.getPath().getName();
      if (files.contains(name)) {
        continue;
      }
      String reason = name.equals(STATE_JSON) || name.equals(DATASET_INFO_JSON) ? SkippedFile.METADATA
          : name.startsWith(".") || name.startsWith("_") ? SkippedFile.HIDDEN : SkippedFile.UNKNOWN;
      skipped.add(new SkippedFile(child.getPath().toString(), reason));
    }
  }

  /** The {@code _data_files} file names of a datasets state.json, or null when the file is not one. */
  private List<String> dataFiles(FileStatus state) {
    JsonNode files;
    try {
      files = readJson(state.getPath().toString()).path("_data_files");
    } catch (IllegalArgumentException e) {
      return null; // some other state.json: an ordinary file
    }
    if (!files.isArray()) {
      return null;
    }
    List<String> names = new ArrayList<>();
    for (JsonNode f : files) {
      String name = f.path("filename").asText("");
      if (name.isEmpty() || name.contains("/")) {
        throw new IllegalArgumentException("Hugging Face dataset file " + state.getPath() + ": _data_files entry "
            + f + " is not a file name");
      }
      names.add(name);
    }
    return names;
  }

  private JsonNode readJson(String path) {
    try {
      return Json.MAPPER.readTree(storage.readString(path));
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException("Hugging Face dataset file " + path + " cannot be read as JSON: "
          + e.getMessage(), e);
    }
  }

  /**
   * Hub-style shards under an input folder ({@code data/SPLIT-00000-of-00002.parquet}): only the chosen split's, as
   * datasets' default data files would; the other data files are skipped as other splits. Unchanged when no file
   * is named so.
   */
  private List<FileStatus> hubSplit(String input, String root, List<FileStatus> found) {
    Map<String, List<FileStatus>> bySplit = new TreeMap<>();
    for (FileStatus f : found) {
      String path = f.getPath().toString();
      String rel = path.startsWith(root + "/") ? path.substring(root.length() + 1) : path;
      Matcher m = SHARDED.matcher(rel);
      if (m.matches()) {
        bySplit.computeIfAbsent(m.group(1), k -> new ArrayList<>()).add(f);
      }
    }
    if (bySplit.isEmpty()) {
      return found;
    }
    if (!bySplit.containsKey(datasetSplit)) {
      throw new IllegalArgumentException("input folder " + input + " holds Hugging Face dataset shards of the "
          + "splits " + new TreeSet<>(bySplit.keySet()) + " (data/SPLIT-00000-of-0000N.*), none of split '"
          + datasetSplit + "'; set prepare.dataset_split to the split to read");
    }
    List<FileStatus> mine = bySplit.get(datasetSplit);
    for (FileStatus f : found) {
      if (!mine.contains(f)) {
        skipped.add(new SkippedFile(f.getPath().toString(), SkippedFile.OTHER_SPLIT));
      }
    }
    return mine;
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

  /**
   * jsonl, json (array or lines: decided by content), parquet, arrow_stream, or null; compression suffixes are looked
   * through (not for parquet and arrow, which compress inside).
   */
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
    if (n.endsWith(".arrow") && codec == null) {
      return InputFile.ARROW_STREAM;
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
