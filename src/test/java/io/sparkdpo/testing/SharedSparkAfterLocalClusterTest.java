package io.sparkdpo.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class SharedSparkAfterLocalClusterTest {
  @Test
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  void sharedSessionIsRecreatedAfterALocalClusterReplacedIt() {
    SparkSession before = SharedSpark.get();
    assertEquals(3, before.range(3).count());
    try (LocalClusterSpark cluster = LocalClusterSpark.start(1, 512)) {
      assertEquals("local-cluster[1,1,512]", cluster.session().sparkContext().master());
      assertEquals(5, cluster.session().range(5).count());
    }
    SparkSession after = SharedSpark.get();
    assertNotSame(before, after);
    assertEquals("local[2]", after.sparkContext().master());
    assertEquals(4, after.range(4).count());
  }
}
