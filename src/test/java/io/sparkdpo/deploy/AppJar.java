package io.sparkdpo.deploy;

import java.nio.file.Files;
import java.nio.file.Path;

/** The built application jar, for tests that run after {@code package} (tag "appjar", phase integration-test). */
final class AppJar {
  private AppJar() {}

  static Path path() {
    String p = System.getProperty("app.jar");
    if (p == null) {
      throw new IllegalStateException("system property app.jar is not set: run with mvn verify (the app-jar "
          + "surefire execution sets it), after mvn package");
    }
    Path jar = Path.of(p);
    if (!Files.isRegularFile(jar)) {
      throw new IllegalStateException(jar + " does not exist: mvn package builds it");
    }
    return jar;
  }
}
