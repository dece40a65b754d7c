package io.sparkdpo.notebooks;

import java.io.File;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * The library classpath a notebook kernel gets from {@code JJAVA_CLASSPATH} in the README's setup: every
 * dependency of the project, Spark included ({@code target/classpath.txt}), but not the project's own classes,
 * which the notebooks add with {@code %classpath}. In a test JVM that is this JVM's classpath minus
 * {@code target/classes} and {@code target/test-classes}.
 */
final class KernelClasspath {
  private KernelClasspath() {}

  static List<Path> ofThisJvm() {
    Path target = Path.of(System.getProperty("project.build.directory", "target")).toAbsolutePath().normalize();
    List<Path> own = List.of(target.resolve("classes"), target.resolve("test-classes"));
    return Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
        .filter(s -> !s.isBlank())
        .map(s -> Path.of(s).toAbsolutePath().normalize())
        .filter(p -> !own.contains(p))
        .toList();
  }

  /** The project's compiled classes, which {@code %classpath ../target/classes} names. */
  static Path projectClasses() {
    return Path.of(System.getProperty("project.build.directory", "target")).toAbsolutePath().normalize()
        .resolve("classes");
  }
}
