package io.sparkdpo.notebooks;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * JJava's {@code %classpath} line magic (JJava 1.x; {@code %jars} is its deprecated alias): each argument is a
 * path or a simple glob ({@code *} = any characters and {@code ?} = one character, within one path segment),
 * relative to the kernel's working directory, which Jupyter sets to the notebook's folder. Arguments are split
 * on blanks, with double quotes grouping and a backslash escaping the next character (JJava's splitting, for
 * the paths a notebook names).
 *
 * <p>One deliberate difference: JJava silently adds nothing for a glob that matches nothing; here that is an
 * error, so a notebook whose classpath line went stale fails the build instead of failing later with
 * "package does not exist".
 */
final class ClasspathMagic {
  static final String NAME = "classpath";

  private ClasspathMagic() {}

  /** The existing files and folders the arguments name, in argument order, as absolute paths. */
  static List<Path> resolve(List<String> args, Path workingDir) {
    if (args.isEmpty()) {
      throw new IllegalArgumentException("%classpath needs at least one path");
    }
    List<Path> out = new ArrayList<>();
    for (String arg : args) {
      List<Path> matched = glob(arg, workingDir);
      if (matched.isEmpty()) {
        throw new IllegalArgumentException("%classpath " + arg + " matches nothing (relative to " + workingDir
            + "); build the project first (see notebooks/README.md)");
      }
      out.addAll(matched);
    }
    return out;
  }

  /** Splits a magic's argument text: blanks separate, "..." groups, a backslash escapes the next character. */
  static List<String> splitArgs(String text) {
    List<String> out = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    boolean quoted = false;
    boolean escaped = false;
    for (char c : text.strip().toCharArray()) {
      if (escaped) {
        current.append(c);
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        if (quoted) {
          out.add(current.toString());
          current.setLength(0);
        }
        quoted = !quoted;
      } else if ((c == ' ' || c == '\t') && !quoted) {
        if (current.length() > 0) {
          out.add(current.toString());
          current.setLength(0);
        }
      } else {
        current.append(c);
      }
    }
    if (current.length() > 0) {
      out.add(current.toString());
    }
    return out;
  }

  private static List<Path> glob(String pattern, Path workingDir) {
    boolean absolute = pattern.startsWith("/");
    List<Path> current = List.of(absolute ? Path.of("/") : workingDir.toAbsolutePath());
    for (String segment : pattern.split("/+")) {
      if (segment.isEmpty()) {
        continue;
      }
      List<Path> next = new ArrayList<>();
      for (Path dir : current) {
        if (!hasWildcard(segment)) {
          Path p = dir.resolve(segment);
          if (Files.exists(p)) {
            next.add(p);
          }
          continue;
        }
        if (!Files.isDirectory(dir)) {
          continue;
        }
        Pattern regex = wildcardRegex(segment);
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
          for (Path e : entries) {
            if (regex.matcher(e.getFileName().toString()).matches()) {
              next.add(e);
            }
          }
        } catch (IOException e) {
          throw new UncheckedIOException("%classpath " + pattern + ": cannot list " + dir, e);
        }
      }
      next.sort(null);
      current = next;
    }
    return current.stream().map(p -> p.normalize()).toList();
  }

  private static boolean hasWildcard(String segment) {
    return segment.indexOf('*') >= 0 || segment.indexOf('?') >= 0;
  }

  private static Pattern wildcardRegex(String segment) {
    StringBuilder b = new StringBuilder();
    for (char c : segment.toCharArray()) {
      b.append(c == '*' ? ".*" : c == '?' ? "." : Pattern.quote(String.valueOf(c)));
    }
    return Pattern.compile(b.toString());
  }
}
