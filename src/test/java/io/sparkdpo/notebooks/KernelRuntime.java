package io.sparkdpo.notebooks;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The kernel's own classes for the notebook shell's compiler: {@link KernelDisplay}'s class files copied into a
 * folder of their own, as a real kernel has its jar (and nothing of the project) on its class path. The test
 * classes folder itself cannot be added: it would let a notebook compile against test code.
 */
final class KernelRuntime {
  private KernelRuntime() {}

  /** Copies {@code KernelDisplay*.class} into {@code dir} under their package folder; returns {@code dir}. */
  static Path copyTo(Path dir) {
    String simple = KernelDisplay.class.getSimpleName();
    try {
      Path own = Path.of(KernelDisplay.class.getResource(simple + ".class").toURI()).getParent();
      Path target = Files.createDirectories(dir.resolve(KernelDisplay.class.getPackageName().replace('.', '/')));
      int copied = 0;
      try (DirectoryStream<Path> files = Files.newDirectoryStream(own, simple + "*.class")) {
        for (Path f : files) {
          Files.copy(f, target.resolve(f.getFileName()));
          copied++;
        }
      }
      if (copied == 0) {
        throw new IllegalStateException("no " + simple + " class files in " + own);
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (URISyntaxException | IllegalArgumentException e) {
      throw new IllegalStateException("the kernel's display class is not a file on the class path: " + e, e);
    }
  }

  static void delete(Path dir) {
    try (Stream<Path> all = Files.walk(dir)) {
      all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
