package io.sparkdpo.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.testing.SparkHomeFixture;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.jar.JarFile;
import java.util.zip.ZipEntry;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("appjar")
class AppJarContentsTest {
  private static Set<String> classesIn(Path jar) throws IOException {
    Set<String> out = new HashSet<>();
    try (JarFile j = new JarFile(jar.toFile())) {
      j.stream().map(ZipEntry::getName)
          .filter(n -> n.endsWith(".class") && !n.startsWith("META-INF/"))
          .forEach(out::add);
    }
    return out;
  }

  @Test
  void shipsNoClassThatASparkDistributionAlreadyHas() throws IOException {
    Set<String> app = classesIn(AppJar.path());
    List<String> clashes = new ArrayList<>();
    for (Path sparkJar : SparkHomeFixture.sparkJars()) {
      for (String c : classesIn(sparkJar)) {
        if (app.contains(c)) {
          clashes.add(sparkJar.getFileName() + ": " + c);
        }
      }
    }
    assertTrue(clashes.isEmpty(), clashes.size() + " classes also in Spark's jars, e.g. "
        + clashes.subList(0, Math.min(10, clashes.size())));
  }

  @Test
  void carriesTheNativesAndRelocatesWhatCouldClash() throws IOException {
    try (JarFile j = new JarFile(AppJar.path().toFile())) {
      assertNotNull(j.getEntry("native/lib/pytorch.properties"), "DJL PyTorch native marker");
      assertNotNull(j.getEntry("pytorch/cpu/linux-x86_64/libtorch_cpu.so"), "CPU libtorch");
      assertNotNull(j.getEntry("native/lib/linux-x86_64/cpu/libtokenizers.so"), "tokenizers native");
      assertNotNull(j.getEntry("ai/djl/pytorch/engine/PtEngine.class"), "ai.djl is not relocated");
      assertNotNull(j.getEntry("io/sparkdpo/shaded/com/google/common/collect/ImmutableList.class"));
      assertNotNull(j.getEntry("io/sparkdpo/shaded/org/yaml/snakeyaml/Yaml.class"));
      assertTrue(j.stream().noneMatch(e -> e.getName().startsWith("com/google/common/")
          || e.getName().startsWith("org/yaml/snakeyaml/")
          || e.getName().startsWith("com/fasterxml/jackson/dataformat/yaml/")
          || e.getName().startsWith("com/google/gson/")), "unrelocated Guava, YAML or gson");
      if ("spark-3.5".equals(System.getProperty("app.jar.profile"))) {
        // Spark 3.5 distributions carry Hive's gson 2.2.4, too old for DJL: the jar brings its own (docs/spark-3.5.md).
        assertNotNull(j.getEntry("io/sparkdpo/shaded/com/google/gson/Gson.class"), "relocated gson");
      }
      assertTrue(j.stream().noneMatch(e -> e.getName().matches("META-INF/[^/]+\\.(SF|DSA|RSA|EC)")), "signatures");
      String factories = new String(j.getInputStream(j.getEntry("META-INF/services/com.fasterxml.jackson.core.JsonFactory"))
          .readAllBytes(), StandardCharsets.UTF_8).trim();
      // YAML's factory, plus CBOR's in the spark-3.5 jar (AWS SDK v1 brings it); every one relocated.
      List<String> factoryList = List.of(factories.split("\\s+"));
      assertTrue(factoryList.contains("io.sparkdpo.shaded.com.fasterxml.jackson.dataformat.yaml.YAMLFactory"), factories);
      assertTrue(factoryList.stream().allMatch(c -> c.startsWith("io.sparkdpo.shaded.")), factories);
      String engines = new String(j.getInputStream(j.getEntry("META-INF/services/ai.djl.engine.EngineProvider"))
          .readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(engines.contains("ai.djl.pytorch.engine.PtEngineProvider"), engines);
      assertEquals("io.sparkdpo.cli.Main", j.getManifest().getMainAttributes().getValue("Main-Class"));
    }
  }
}
