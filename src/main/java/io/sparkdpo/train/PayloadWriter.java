package io.sparkdpo.train;

import io.sparkdpo.io.Json;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.stream.Stream;

/** Writes one file of a checkpoint; the store decides where and checksums what passes through. */
@FunctionalInterface
public interface PayloadWriter {
  void writeTo(OutputStream out) throws IOException;

  static PayloadWriter bytes(byte[] content) {
    return out -> out.write(content);
  }

  /** A value as pretty, key-sorted JSON (step, scheduler, data cursor, RNG state). */
  static PayloadWriter json(Object value) {
    return out -> out.write(Json.MAPPER.writeValueAsBytes(value));
  }

  static PayloadWriter localFile(Path file) {
    return out -> {
      try (InputStream in = Files.newInputStream(file)) {
        in.transferTo(out);
      }
    };
  }

  /**
   * Every regular file under a local folder (e.g. a model saved to a scratch folder), named
   * {@code prefix/relative/path}, in sorted order.
   */
  static LinkedHashMap<String, PayloadWriter> localFolder(Path folder, String prefix) throws IOException {
    LinkedHashMap<String, PayloadWriter> files = new LinkedHashMap<>();
    List<Path> paths;
    try (Stream<Path> walk = Files.walk(folder)) {
      paths = walk.filter(Files::isRegularFile).sorted().toList();
    }
    for (Path p : paths) {
      String relative = folder.relativize(p).toString().replace('\\', '/');
      files.put(prefix.isEmpty() ? relative : prefix + "/" + relative, localFile(p));
    }
    return files;
  }
}
