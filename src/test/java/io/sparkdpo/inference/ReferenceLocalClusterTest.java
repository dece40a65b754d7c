package io.sparkdpo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sparkdpo.data.PreparedPair;
import io.sparkdpo.testing.LocalClusterSpark;
import io.sparkdpo.testing.SharedSpark;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The executor-side stages on two executor JVMs ({@code local-cluster[2,1,1024]}): each JVM loads its model once,
 * however many tasks it runs, and the results equal those of an in-process computation and of {@code local[2]}.
 */
class ReferenceLocalClusterTest {
  @TempDir
  Path dir;

  @Test
  @Timeout(value = 400, unit = TimeUnit.SECONDS)
  void eachExecutorJvmLoadsItsModelOnceAndResultsMatchASingleJvm() throws IOException {
    long seed = ReferenceFixtures.freshSeed();
    long generateSeed = ReferenceFixtures.freshSeed();
    ReferenceJob.Result reference;
    GenerateJob.Result generated;
    try (LocalClusterSpark cluster = LocalClusterSpark.start(2, 1024)) {
      Path data = ReferenceFixtures.prepare(cluster.session(), dir.resolve("prepared"), 2);
      reference = new ReferenceJob(cluster.session(), ReferenceFixtures.config(seed, "reference.partitions=6"))
          .run(data.toString(), dir.resolve("ref").toString());
      generated = new GenerateJob(cluster.session(), GenerateJobTest.config(generateSeed, "generate.partitions=3"))
          .run(dir.resolve("generated").toString());
    }
    ExecutorStats.Summary s = reference.executors().orElseThrow();
    assertEquals(6, s.tasks());
    assertEquals(2, s.jvms().size(), "both executors ran tasks: " + s.jvms());
    assertEquals(2, s.modelLoads(), "one load per executor JVM, not per task: " + s);
    assertTrue(s.jvms().stream().noneMatch(j -> j.startsWith("driver")), s.jvms().toString());
    List<PreparedPair> pairs = ReferenceFixtures.pairs(dir.resolve("ref"));
    assertEquals(50, pairs.size());
    ReferenceFixtures.assertMatches(pairs, ReferenceFixtures.inProcess(seed, pairs));

    GenerateManifest.Executors g = generated.manifest().executors();
    assertEquals(3, g.tasks());
    assertEquals(g.jvms(), g.modelLoads(), "one load per executor JVM that sampled: " + g);
    assertTrue(g.jvms() >= 1 && g.jvms() <= 2, g.toString());
    // The same pairs as one JVM with another partitioning (SharedSpark restarts local[2] after the cluster).
    GenerateJobTest.generate(GenerateJobTest.config(generateSeed, "generate.partitions=1"), dir.resolve("local"));
    assertArrayEquals(Files.readAllBytes(dir.resolve("local/pairs.jsonl")),
        Files.readAllBytes(dir.resolve("generated/pairs.jsonl")));
    assertTrue(SharedSpark.get().sparkContext().master().startsWith("local["));
  }
}
