package io.sparkdpo.io;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.LocalFileSystem;

/**
 * Files by path string, whatever the scheme: a bare local path, {@code file:}, {@code hdfs:} or {@code s3a:}.
 * A thin layer over Hadoop's FileSystem so every stage treats local disk and object stores alike.
 */
public final class Storage {
  private final Configuration conf;

  /**
   * Local paths go through Hadoop's raw local file system: the checksummed default litters every output folder
   * (manifests, model folders, reports) with {@code .crc} side files and then refuses files another tool
   * rewrote. Our own sha256 sums (manifests, checkpoints) cover integrity. The configuration itself is left
   * alone (s3a buffers through the checksummed local file system and insists on its type).
   */
  public Storage(Configuration conf) {
    this.conf = conf;
  }

  /** Local-only storage with a default Hadoop configuration. */
  public static Storage local() {
    return new Storage(new Configuration());
  }

  public Configuration conf() {
    return conf;
  }

  /** Turns a bare local path into an absolute {@code file:} URI; leaves URIs with a scheme alone. */
  public static String qualify(String path) {
    if (path.matches("^[a-zA-Z][a-zA-Z0-9+.-]*:.*") && !path.matches("^[a-zA-Z]:\\\\.*")) {
      return path;
    }
    return java.nio.file.Path.of(path).toAbsolutePath().normalize().toUri().toString();
  }

  public static String join(String dir, String child) {
    return dir.endsWith("/") ? dir + child : dir + "/" + child;
  }

  public FileSystem fs(String path) {
    try {
      FileSystem fs = FileSystem.get(URI.create(qualify(path)), conf);
      return fs instanceof LocalFileSystem local ? local.getRawFileSystem() : fs;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open the file system of " + path + ": " + e.getMessage(), e);
    }
  }

  private Path hpath(String path) {
    return new Path(qualify(path));
  }

  public boolean exists(String path) {
    try {
      return fs(path).exists(hpath(path));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot check " + path + ": " + e.getMessage(), e);
    }
  }

  public boolean isDirectory(String path) {
    try {
      return fs(path).getFileStatus(hpath(path)).isDirectory();
    } catch (FileNotFoundException e) {
      return false;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot check " + path + ": " + e.getMessage(), e);
    }
  }

  public FileStatus status(String path) throws FileNotFoundException {
    try {
      return fs(path).getFileStatus(hpath(path));
    } catch (FileNotFoundException e) {
      throw e;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot stat " + path + ": " + e.getMessage(), e);
    }
  }

  /** Direct children, sorted by name (so callers see a deterministic order). Empty if the folder is absent. */
  public List<FileStatus> list(String dir) {
    try {
      FileStatus[] st = fs(dir).listStatus(hpath(dir));
      List<FileStatus> out = new ArrayList<>(Arrays.asList(st));
      out.sort(Comparator.comparing(s -> s.getPath().getName()));
      return out;
    } catch (FileNotFoundException e) {
      return List.of();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list " + dir + ": " + e.getMessage(), e);
    }
  }

  public InputStream open(String path) throws IOException {
    return fs(path).open(hpath(path));
  }

  public OutputStream create(String path) throws IOException {
    return fs(path).create(hpath(path), true);
  }

  /**
   * Writes a file that must not exist yet: false when it does. Atomic on local disk (O_EXCL) and HDFS (the name
   * node decides); on S3 the check and the upload are separate requests, so callers that need exclusivity there
   * read the file back after a while ({@link FolderLease} does).
   */
  public boolean writeNew(String path, byte[] bytes) {
    FileSystem fs = fs(path);
    if ("file".equals(fs.getUri().getScheme())) {
      // Hadoop's local create checks, then opens: O_EXCL through NIO is the atomic form.
      java.nio.file.Path local = java.nio.file.Path.of(URI.create(qualify(path)));
      try {
        java.nio.file.Files.createDirectories(local.getParent());
        java.nio.file.Files.write(local, bytes, java.nio.file.StandardOpenOption.CREATE_NEW,
            java.nio.file.StandardOpenOption.WRITE);
        return true;
      } catch (java.nio.file.FileAlreadyExistsException e) {
        return false;
      } catch (IOException e) {
        throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
      }
    }
    try (OutputStream out = fs.create(hpath(path), false)) {
      out.write(bytes);
      return true;
    } catch (org.apache.hadoop.fs.FileAlreadyExistsException e) {
      return false;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
    }
  }

  /** Whether creating a file is atomic with respect to other creators (local disk, HDFS), not a check then a put. */
  public boolean atomicCreate(String path) {
    String scheme = String.valueOf(fs(path).getUri().getScheme());
    return scheme.equals("file") || scheme.equals("hdfs") || scheme.equals("viewfs");
  }

  public byte[] readBytes(String path) {
    try (InputStream in = open(path)) {
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + path + ": " + e.getMessage(), e);
    }
  }

  public String readString(String path) {
    return new String(readBytes(path), StandardCharsets.UTF_8);
  }

  public void writeBytes(String path, byte[] bytes) {
    try (OutputStream out = create(path)) {
      out.write(bytes);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
    }
  }

  public void writeString(String path, String text) {
    writeBytes(path, text.getBytes(StandardCharsets.UTF_8));
  }

  /** {@code value} as {@link Json#MAPPER} writes it (sorted keys, indented): the form of every manifest. */
  public void writeJson(String path, Object value) {
    byte[] bytes;
    try {
      bytes = Json.MAPPER.writeValueAsBytes(value);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
    }
    writeBytes(path, bytes);
  }

  public void mkdirs(String dir) {
    try {
      fs(dir).mkdirs(hpath(dir));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + dir + ": " + e.getMessage(), e);
    }
  }

  /** Deletes a file or folder recursively; true if something was there. */
  public boolean delete(String path) {
    try {
      return fs(path).delete(hpath(path), true);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + path + ": " + e.getMessage(), e);
    }
  }

  /** Renames; on object stores this is a copy and not atomic, which callers that need atomicity account for. */
  public void rename(String from, String to) {
    try {
      if (!fs(from).rename(hpath(from), hpath(to))) {
        throw new IOException("rename returned false");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot rename " + from + " to " + to + ": " + e.getMessage(), e);
    }
  }
}
