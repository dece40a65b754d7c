package io.sparkdpo.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.NodeList;

/**
 * A SPARK_HOME without a Spark download: {@code target/spark-home/jars/} holds what a Spark distribution's
 * {@code jars/} holds (Spark and its own dependencies), hard-linked from the local Maven repository. Executors and
 * the standalone Master and Worker get their classpath from there, exactly as on a cluster; the application's own
 * libraries are NOT in it (they come with the application jar, or on the executor classpath in local-cluster
 * tests).
 *
 * <p>Which jars are Spark's is read from {@code target/dependency-list.txt} (written by the build): every
 * {@code provided} dependency, plus the compile-scope ones that the application jar leaves out because Spark's
 * classpath has them (the shade plugin's {@code artifactSet} excludes in pom.xml, read from there so there is one
 * list). Built once and reused while the list is unchanged.
 */
public final class SparkHomeFixture {
  private static final String PROVIDED = "provided";
  private static Path home;

  private SparkHomeFixture() {}

  /** One dependency of the project: its coordinates, scope and file in the local repository. */
  public record Dependency(String groupId, String artifactId, String scope, Path file) {
    boolean matches(String pattern) {
      String[] p = pattern.split(":");
      return glob(p[0]).matcher(groupId).matches() && (p.length < 2 || glob(p[1]).matcher(artifactId).matches());
    }

    private static Pattern glob(String s) {
      return Pattern.compile(Pattern.quote(s).replace("*", "\\E.*\\Q"));
    }
  }

  /** {@code target/spark-home}, filled; the same folder surefire gives the test JVM as SPARK_HOME. */
  public static synchronized Path get() {
    if (home == null) {
      home = build(buildDirectory().resolve("spark-home"));
    }
    return home;
  }

  /** The jars a Spark distribution holds, as files in the local Maven repository. */
  public static List<Path> sparkJars() {
    List<String> onSparkClasspath = appJarExcludes();
    return dependencies().stream()
        .filter(d -> d.scope().equals(PROVIDED)
            || (!d.scope().equals("test") && onSparkClasspath.stream().anyMatch(d::matches)))
        .map(Dependency::file)
        .collect(Collectors.toList());
  }

  /**
   * What the application needs beyond Spark: its compile and runtime dependencies that Spark does not provide,
   * plus its compiled classes (main and test). local-cluster executors get these through
   * {@code spark.executor.extraClassPath}.
   */
  public static List<Path> applicationClasspath() {
    List<String> onSparkClasspath = appJarExcludes();
    List<Path> cp = new ArrayList<>();
    cp.add(buildDirectory().resolve("classes"));
    cp.add(buildDirectory().resolve("test-classes"));
    dependencies().stream()
        .filter(d -> d.scope().equals("compile") || d.scope().equals("runtime"))
        .filter(d -> onSparkClasspath.stream().noneMatch(d::matches))
        .map(Dependency::file)
        .forEach(cp::add);
    return cp;
  }

  /**
   * The Scala binary version of the Spark on the classpath ("2.13", or "2.12" in the spark-3.5 build), which Spark's
   * command builder needs as {@code SPARK_SCALA_VERSION} to launch executors and daemons from this SPARK_HOME.
   */
  public static String scalaBinaryVersion() {
    String full = scala.util.Properties$.MODULE$.versionNumberString(); // e.g. 2.13.17
    return full.substring(0, full.lastIndexOf('.'));
  }

  /** Every resolved dependency, from the build's {@code dependency:list} output. */
  public static List<Dependency> dependencies() {
    Path list = buildDirectory().resolve("dependency-list.txt");
    if (!Files.isRegularFile(list)) {
      throw new IllegalStateException(list + " is missing: run the tests through Maven (mvn test), whose "
          + "generate-test-resources phase writes it");
    }
    try (Stream<String> lines = Files.lines(list)) {
      return lines.map(String::trim)
          .filter(l -> l.contains(":/"))
          .map(SparkHomeFixture::parse)
          .collect(Collectors.toList());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  // "group:artifact:type[:classifier]:version:scope:/abs/path.jar -- module x"
  private static Dependency parse(String line) {
    int dash = line.indexOf(" -- ");
    String entry = dash < 0 ? line : line.substring(0, dash);
    int pathStart = entry.indexOf(":/");
    String[] coords = entry.substring(0, pathStart).split(":");
    return new Dependency(coords[0], coords[1], coords[coords.length - 1], Path.of(entry.substring(pathStart + 1)));
  }

  /**
   * The {@code groupId:artifactId} patterns the shade plugin keeps out of the application jar: the main build's, or
   * those of the profile named by the system property {@code app.jar.profile} (pom.xml sets it in a profile whose
   * artifactSet replaces the main one, e.g. spark-3.5).
   */
  static List<String> appJarExcludes() {
    Path pom = Path.of(System.getProperty("project.basedir", ".")).resolve("pom.xml");
    String profile = System.getProperty("app.jar.profile", "").trim();
    try {
      DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
      f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
      Document doc = f.newDocumentBuilder().parse(pom.toFile());
      NodeList plugins = doc.getElementsByTagName("plugin");
      List<String> main = new ArrayList<>();
      List<String> ofProfile = new ArrayList<>();
      for (int i = 0; i < plugins.getLength(); i++) {
        org.w3c.dom.Element plugin = (org.w3c.dom.Element) plugins.item(i);
        NodeList ids = plugin.getElementsByTagName("artifactId");
        if (ids.getLength() == 0 || !ids.item(0).getTextContent().trim().equals("maven-shade-plugin")) {
          continue;
        }
        String owner = enclosingProfile(plugin);
        List<String> out = owner == null ? main : owner.equals(profile) ? ofProfile : null;
        if (out == null) {
          continue;
        }
        NodeList sets = plugin.getElementsByTagName("artifactSet");
        for (int s = 0; s < sets.getLength(); s++) {
          NodeList excludes = ((org.w3c.dom.Element) sets.item(s)).getElementsByTagName("exclude");
          for (int e = 0; e < excludes.getLength(); e++) {
            out.add(excludes.item(e).getTextContent().trim());
          }
        }
      }
      List<String> out = ofProfile.isEmpty() ? main : ofProfile;
      if (out.isEmpty()) {
        throw new IllegalStateException(pom + ": the maven-shade-plugin has no artifactSet excludes");
      }
      return out;
    } catch (Exception e) {
      throw new IllegalStateException("cannot read the shade plugin's excludes from " + pom + ": " + e, e);
    }
  }

  /** The id of the {@code <profile>} an element sits in, or null for the main build. */
  private static String enclosingProfile(org.w3c.dom.Node node) {
    for (org.w3c.dom.Node n = node.getParentNode(); n != null; n = n.getParentNode()) {
      if (n instanceof org.w3c.dom.Element el && el.getTagName().equals("profile")) {
        NodeList ids = el.getElementsByTagName("id");
        return ids.getLength() == 0 ? "" : ids.item(0).getTextContent().trim();
      }
    }
    return null;
  }

  static Path buildDirectory() {
    return Path.of(System.getProperty("project.build.directory", "target")).toAbsolutePath();
  }

  private static Path build(Path dir) {
    List<Path> jars = sparkJars();
    String manifest = jars.stream().map(Path::toString).sorted().collect(Collectors.joining("\n")) + "\n";
    Path jarsDir = dir.resolve("jars");
    Path marker = dir.resolve("jars.list");
    try {
      Files.createDirectories(dir.resolve("conf"));
      Files.createDirectories(dir.resolve("work"));
      writeSparkSubmit(dir.resolve("bin").resolve("spark-submit"));
      if (Files.isDirectory(jarsDir) && Files.isRegularFile(marker) && Files.readString(marker).equals(manifest)) {
        return dir;
      }
      // Build beside, then swap in, so a half-built folder is never used; drop what an interrupted build left.
      try (Stream<Path> leftovers = Files.list(dir)) {
        for (Path p : leftovers.filter(p -> p.getFileName().toString().startsWith("jars-")).toList()) {
          deleteTree(p);
        }
      }
      Path tmp = Files.createTempDirectory(dir, "jars-");
      for (Path jar : jars) {
        Path link = tmp.resolve(jar.getFileName());
        if (Files.exists(link)) { // same file name from two groups: keep both
          link = tmp.resolve(jar.getParent().getParent().getParent().getFileName() + "-" + jar.getFileName());
        }
        link(jar, link);
      }
      deleteTree(jarsDir);
      Files.move(tmp, jarsDir, StandardCopyOption.ATOMIC_MOVE);
      Files.writeString(marker, manifest);
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot build " + dir, e);
    }
  }

  /** {@code bin/spark-submit} that works as Spark's does (see the script). */
  private static void writeSparkSubmit(Path script) throws IOException {
    Files.createDirectories(script.getParent());
    try (var in = SparkHomeFixture.class.getResourceAsStream("spark-submit.sh")) {
      if (in == null) {
        throw new IllegalStateException("missing test resource io/sparkdpo/testing/spark-submit.sh");
      }
      Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
    }
    if (!script.toFile().setExecutable(true)) {
      throw new IOException("cannot make " + script + " executable");
    }
  }

  private static void link(Path target, Path link) throws IOException {
    try {
      Files.createLink(link, target);
    } catch (FileSystemException | UnsupportedOperationException e) {
      Files.copy(target, link); // another file system: copy instead
    }
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).collect(Collectors.toList())) {
        Files.delete(p);
      }
    }
  }
}
